"""Delivery workers: claim queue heads from the outbox, send, back off, dead-letter.

The retry policy lives here once; notifiers only say whether a failure is
worth retrying. A row is marked delivered only after its target acknowledged
it, so a crash at any point means a resend (at-least-once), never a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.notifiers.base import Notifier, Outcome
from bridge.settings import DeliverySettings
from bridge.store import outbox
from bridge.store.outbox import OutboxRow

log = get_logger("bridge.delivery")
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def retry_delay(
    attempt: int,
    settings: DeliverySettings,
    retry_after: float | None = None,
    jitter: Callable[[], float] = random.random,
) -> float:
    """Seconds before retry number ``attempt`` (1 for the first retry).

    A target's own ``Retry-After`` wins when it is within reason; otherwise the
    delay doubles from ``first_retry`` up to ``max_backoff``, ±20 % so that many
    failing deliveries don't retry in lockstep.
    """
    if retry_after is not None and 0 <= retry_after <= settings.max_retry_after:
        return retry_after
    base: float = settings.first_retry * 2.0 ** min(attempt - 1, 32)
    return min(settings.max_backoff, base * (0.8 + 0.4 * jitter()))


def next_step(
    row: OutboxRow, outcome: Outcome, now: datetime, settings: DeliverySettings
) -> tuple[str, datetime | None]:
    """What to do with a row after an attempt: ("delivered"|"retry"|"dead", when to retry)."""
    if outcome.status == "done":
        return "delivered", None
    if outcome.status == "permanent":
        return "dead", None
    retry_at = now + timedelta(seconds=retry_delay(row.attempts + 1, settings, outcome.retry_after))
    if retry_at > row.enqueued_at + timedelta(seconds=settings.max_age):
        return "dead", None
    return "retry", retry_at


class DeliveryWorker:
    """Runs many (target, run) queues in parallel, one row at a time per queue."""

    def __init__(
        self,
        engine: AsyncEngine,
        notifiers: Mapping[str, Notifier],
        settings: DeliverySettings,
        metrics: Metrics,
        clock: Clock = utcnow,
    ) -> None:
        self._engine = engine
        self._notifiers = notifiers
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self.holder = f"worker-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        # A claim outlives the slowest send (Slack's rate-limit waits included).
        self._lease = timedelta(seconds=max(120.0, 4 * settings.shutdown_grace))

    def wake(self) -> None:
        """New rows were committed: look now instead of at the next check."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            free = self._settings.concurrency - len(self._in_flight)
            if free > 0:
                try:
                    for row in await self._claim(free):
                        task = asyncio.create_task(self._deliver(row))
                        self._in_flight.add(task)
                        task.add_done_callback(self._finished)
                except Exception:
                    log.exception("outbox claim failed; will try again")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._settings.check_interval)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()  # a queue's next row may be due now

    async def stop(self) -> None:
        """Stop claiming, let in-flight sends finish within the grace period."""
        self._stopping.set()
        self._wake.set()
        if self._in_flight:
            _, pending = await asyncio.wait(self._in_flight, timeout=self._settings.shutdown_grace)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("deliveries cut short at shutdown; they will be resent", count=len(pending))
                await asyncio.gather(*pending, return_exceptions=True)
        async with self._engine.begin() as conn:
            await outbox.release_claims(conn, self.holder)

    async def _claim(self, limit: int) -> list[OutboxRow]:
        async with self._engine.begin() as conn:
            return await outbox.claim_due(conn, self.holder, self._clock(), limit, self._lease)

    async def _deliver(self, row: OutboxRow) -> None:
        bound = log.bind(run_id=row.run_id, event_id=row.event_id, event_type=row.event_type, target=row.target)
        outcome = await self._send(row, bound)
        now = self._clock()
        step, retry_at = next_step(row, outcome, now, self._settings)
        async with self._engine.begin() as conn:
            if step == "delivered":
                await outbox.mark_delivered(conn, row.id, now)
            elif step == "retry" and retry_at is not None:
                await outbox.mark_retry(conn, row.id, retry_at, outcome.detail)
            else:
                await outbox.mark_dead(conn, row.id, outcome.detail)
        self._metrics.deliveries.labels(row.target, step).inc()
        if step == "delivered":
            self._metrics.delivery_latency.labels(row.target).observe((now - row.enqueued_at).total_seconds())
            bound.info("delivered", attempts=row.attempts + 1)
        elif step == "retry":
            bound.warning("delivery failed; will retry", error=outcome.detail, retry_at=retry_at)
        else:
            bound.error("delivery dead-lettered", error=outcome.detail, attempts=row.attempts + 1)

    async def _send(self, row: OutboxRow, bound: object) -> Outcome:
        notifier = self._notifiers.get(row.target)
        if notifier is None:
            return Outcome.permanent(f"target {row.target!r} is no longer configured")
        try:
            return await notifier.send(row.event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("notifier raised", run_id=row.run_id, event_id=row.event_id, target=row.target)
            return Outcome.retry(f"internal error ({type(exc).__name__})")
