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
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.backoff import backoff_delay
from bridge.lifecycle import finish_within
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
    """Seconds before delivery retry number ``attempt``, by the delivery settings."""
    return backoff_delay(
        attempt,
        first=settings.first_retry,
        cap=settings.max_backoff,
        max_retry_after=settings.max_retry_after,
        retry_after=retry_after,
        jitter=jitter(),
    )


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


@dataclass(frozen=True)
class Attempt:
    """The result of one send, waiting to be written back to the outbox."""

    row: OutboxRow
    outcome: Outcome
    step: str
    retry_at: datetime | None
    finished_at: datetime


class DeliveryWorker:
    """Runs many (target, run) queues in parallel, one row at a time per queue.

    Sends happen in tasks; their results are written back by the loop together
    with the next claim, in one transaction (a group commit), so the database
    sees one short write per batch rather than two per delivery.
    """

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
        self._busy: Counter[str] = Counter()  # sends in flight per target
        self._finished: list[Attempt] = []
        # A claim outlives the slowest send (Slack's rate-limit waits included).
        self._lease = timedelta(seconds=max(120.0, 4 * settings.shutdown_grace))

    def wake(self) -> None:
        """New rows were committed: look now instead of at the next check."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                for row in await self._record_and_claim():
                    self._busy[row.target] += 1
                    task = asyncio.create_task(self._deliver(row))
                    self._in_flight.add(task)
                    task.add_done_callback(self._in_flight.discard)
            except Exception:
                log.exception("outbox write failed; will try again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._settings.check_interval)

    async def stop(self) -> None:
        """Stop claiming, let in-flight sends finish within the grace period, record them."""
        self._stopping.set()
        self._wake.set()
        cut_short = await finish_within(set(self._in_flight), self._settings.shutdown_grace)
        if cut_short:
            log.warning("deliveries cut short at shutdown; they will be resent", count=cut_short)
        await self._record_and_claim(claim=False)
        async with self._engine.begin() as conn:
            await outbox.release_claims(conn, self.holder)

    async def _record_and_claim(self, claim: bool = True) -> list[OutboxRow]:
        attempts, self._finished = self._finished, []
        try:
            async with self._engine.begin() as conn:
                await self._record(conn, attempts)
                rows = await self._claim_per_target(conn) if claim else []
        except BaseException:
            self._finished = attempts + self._finished  # keep them for the next write
            raise
        for attempt in attempts:
            self._report(attempt)
        return rows

    async def _claim_per_target(self, conn: AsyncConnection) -> list[OutboxRow]:
        """Each target has its own ``concurrency`` slots, so a slow or failing target
        (whose old retries have the lowest ids) can never starve the others."""
        rows: list[OutboxRow] = []
        now = self._clock()
        for target in await outbox.pending_targets(conn):
            free = self._settings.concurrency - self._busy[target]
            if free > 0:
                rows += await outbox.claim_due(conn, self.holder, now, free, self._lease, target=target)
        return rows

    @staticmethod
    async def _record(conn: AsyncConnection, attempts: list[Attempt]) -> None:
        delivered = [a for a in attempts if a.step == "delivered"]
        if delivered:
            await outbox.mark_delivered_many(conn, [a.row.id for a in delivered], max(a.finished_at for a in delivered))
        for attempt in attempts:
            if attempt.step == "retry" and attempt.retry_at is not None:
                await outbox.mark_retry(conn, attempt.row.id, attempt.retry_at, attempt.outcome.detail)
            elif attempt.step == "dead":
                await outbox.mark_dead(conn, attempt.row.id, attempt.outcome.detail)

    def _report(self, attempt: Attempt) -> None:
        row, step = attempt.row, attempt.step
        bound = log.bind(run_id=row.run_id, event_id=row.event_id, event_type=row.event_type, target=row.target)
        self._metrics.deliveries.labels(row.target, step).inc()
        if step == "delivered":
            latency = (attempt.finished_at - row.enqueued_at).total_seconds()
            self._metrics.delivery_latency.labels(row.target).observe(latency)
            bound.info("delivered", attempts=row.attempts + 1)
        elif step == "retry":
            bound.warning("delivery failed; will retry", error=attempt.outcome.detail, retry_at=attempt.retry_at)
        else:
            bound.error("delivery dead-lettered", error=attempt.outcome.detail, attempts=row.attempts + 1)

    async def _deliver(self, row: OutboxRow) -> None:
        try:
            outcome = await self._send(row)
        finally:
            self._busy[row.target] -= 1
        now = self._clock()
        step, retry_at = next_step(row, outcome, now, self._settings)
        self._finished.append(Attempt(row, outcome, step, retry_at, now))
        self._wake.set()  # record it, and let the queue's next row be claimed

    async def _send(self, row: OutboxRow) -> Outcome:
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
