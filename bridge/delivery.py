"""Delivery workers: claim queue heads from the outbox, send, back off, dead-letter.

The retry policy lives here once; notifiers only say whether a failure is
worth retrying. A row is marked delivered only after its target acknowledged
it, so a crash at any point means a resend (at-least-once), never a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.backoff import backoff_delay
from bridge.events import rfc3339
from bridge.lifecycle import finish_within
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.notifiers.base import Notifier, Outcome
from bridge.settings import DeliverySettings
from bridge.store import leases, outbox, queue_heads, run_bodies
from bridge.store.engine import TransactionRunner
from bridge.store.outbox import OutboxRow, Settlement, Step
from bridge.store.run_bodies import BodyCache

log = get_logger("bridge.delivery")
Clock = Callable[[], datetime]
REPLICA_LEASE_PREFIX = "delivery:"
TARGET_DISCOVERY_EVERY = 30.0  # seconds between looks for rows of targets this replica doesn't know
BODIES_FORGOTTEN_IN_BATCHES = 1024  # run bodies let go of before one delete runs (else at each renewal)


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
) -> tuple[Step, datetime | None]:
    """What to do with a row after an attempt: ("delivered"|"retry"|"dead", when to retry)."""
    if outcome.status == "done":
        return "delivered", None
    if outcome.status == "permanent":
        return "dead", None
    retry_at = now + timedelta(seconds=retry_delay(row.attempts + 1, settings, outcome.retry_after))
    if retry_at > row.enqueued_at + timedelta(seconds=settings.max_age):
        return "dead", None
    return "retry", retry_at


def _about(row: OutboxRow) -> dict[str, str]:
    """What a log line about a delivery names."""
    return {"run_id": row.run_id, "event_id": row.event_id, "event_type": row.event_type, "target": row.target}


def fair_share(concurrency: int, queues: int, replicas: int) -> int:
    """Slots one of ``replicas`` should fill for a target with ``queues`` queues, so that
    when there are fewer queues than slots every replica still gets its part."""
    if replicas <= 1:
        return concurrency
    return min(concurrency, max(1, math.ceil(queues / replicas)))


@dataclass(frozen=True)
class Attempt:
    """The result of one send, waiting to be written back to the outbox."""

    row: OutboxRow
    outcome: Outcome
    step: Step
    retry_at: datetime | None
    finished_at: datetime

    def settlement(self) -> Settlement:
        return Settlement(self.row, self.step, self.finished_at, self.retry_at, self.outcome.detail)


class DeliveryWorker:
    """Runs many (target, run) queues in parallel, one row at a time per queue.

    Sends happen in tasks; their results are written back by the loop together
    with the renewal of the claims still in flight and the next claims, in one
    transaction (a group commit), so the database sees one short write per batch.
    With ``shared`` (several replicas on PostgreSQL) the worker also keeps a
    heartbeat lease, so each replica knows how many share the work and takes
    only its part of a target's queues when there are fewer queues than slots.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        notifiers: Mapping[str, Notifier],
        settings: DeliverySettings,
        metrics: Metrics,
        clock: Clock = utcnow,
        shared: bool = False,
    ) -> None:
        self._engine = engine
        self._notifiers = notifiers
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._shared = shared
        # Says which process holds a claim (outbox_heads.claimed_by), for operators and tests.
        self.holder = f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._busy: Counter[str] = Counter()  # sends in flight per target
        self._sending: set[tuple[str, str]] = set()  # (target, queue) of every send in flight
        self._finished: list[Attempt] = []
        self._ttl = timedelta(seconds=settings.claim_ttl)
        self._renew_every = settings.claim_ttl / 3
        self._renewed_at = -math.inf
        self._replicas = 1
        self._counted_at = -math.inf
        self._targets = set(notifiers)
        self._discovered_at = -math.inf
        self._bodies = BodyCache()
        self._unreferenced: set[int] = set()  # run bodies delivered rows let go of
        self._transactions = TransactionRunner(engine)

    def wake(self) -> None:
        """New rows were committed: look now instead of at the next check."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                for row in await self._cycle():
                    self._start(row)
            except Exception:
                log.exception("outbox write failed; will try again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(self._settings.check_interval, self._renew_every))

    def _start(self, row: OutboxRow) -> None:
        queue = (row.target, row.run_id)
        if queue in self._sending:
            return  # our own claim, lapsed and taken again while its send is still in flight
        self._sending.add(queue)
        self._busy[row.target] += 1
        task = asyncio.create_task(self._deliver(row))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def stop(self) -> None:
        """Stop claiming, let in-flight sends finish within the grace period, record them,
        and hand back what is left so other replicas take it at once."""
        self._stopping.set()
        self._wake.set()
        cut_short = await finish_within(set(self._in_flight), self._settings.shutdown_grace)
        if cut_short:
            log.warning("deliveries cut short at shutdown; they will be resent", count=cut_short)
        await self._cycle(claim=False)
        await self._transactions.close()
        unreferenced, self._unreferenced = self._unreferenced, set()
        async with self._engine.begin() as conn:
            await outbox.release_claims(conn, self.holder, self._clock())
            await conn.run_sync(run_bodies.forget_unreferenced, unreferenced)
            if self._shared:
                await leases.release(conn, REPLICA_LEASE_PREFIX + self.holder, self.holder)

    async def _cycle(self, claim: bool = True) -> list[OutboxRow]:
        """Record what finished, renew what is in flight, claim into the free slots:
        one transaction, run in one hop to the database (``TransactionRunner``)."""
        attempts, self._finished = self._finished, []
        now = self._clock()
        # The slots of the attempts recorded here are free once this commits.
        free = Counter({t: self._settings.concurrency - n for t, n in self._busy.items()})
        free.update(a.row.target for a in attempts)
        targets = self._claim_targets() if claim else set()
        renew = time.monotonic() - self._renewed_at >= self._renew_every

        def work(conn: Connection) -> list[OutboxRow]:
            if attempts:
                self._unreferenced |= outbox.settle(conn, self.holder, [a.settlement() for a in attempts], now)
            if renew:
                self._keep_alive(conn, now)
            if len(self._unreferenced) >= BODIES_FORGOTTEN_IN_BATCHES or (renew and self._unreferenced):
                run_bodies.forget_unreferenced(conn, self._unreferenced)
                self._unreferenced = set()
            return [row for target in sorted(targets) for row in self._claim(conn, target, free, now)]

        try:
            rows = await self._transactions.run(work)
        except BaseException:
            self._finished = attempts + self._finished  # keep them for the next write
            raise
        if renew:
            self._renewed_at = time.monotonic()
        for attempt in attempts:
            self._free(attempt.row)
            self._report(attempt)
        return rows

    def _keep_alive(self, conn: Connection, now: datetime) -> None:
        """Every third of the claim TTL: renew the claims in flight and the replica heartbeat."""
        queue_heads.renew(conn, self.holder, now, self._ttl)
        if self._shared:
            leases.hold_in(conn, REPLICA_LEASE_PREFIX + self.holder, self.holder, now, self._ttl)
            self._count_replicas(conn, now)
        if time.monotonic() - self._discovered_at >= TARGET_DISCOVERY_EVERY:
            self._targets = set(self._notifiers) | set(queue_heads.targets(conn))
            self._discovered_at = time.monotonic()

    def _claim(self, conn: Connection, target: str, free: Counter[str], now: datetime) -> list[OutboxRow]:
        """Each target has its own ``concurrency`` slots, so a slow or failing target can
        never starve the others; a claim asks only for the free slots (and, with several
        replicas sharing fewer queues than slots, for this replica's share)."""
        if self._shared and time.monotonic() - self._counted_at >= self._settings.check_interval:
            self._count_replicas(conn, now)
        slots = free.get(target, self._settings.concurrency)
        if self._replicas > 1:
            queues = queue_heads.count(conn, target, cap=self._settings.concurrency * self._replicas)
            share = fair_share(self._settings.concurrency, queues, self._replicas)
            slots -= self._settings.concurrency - share
        if slots <= 0:
            return []
        return outbox.claim(conn, self.holder, target, now, slots, self._ttl, self._bodies)

    def _count_replicas(self, conn: Connection, now: datetime) -> None:
        """How many replicas share the work, as often as this worker looks for work (not only at
        renewals, a third of the claim TTL apart): a replica that counted before another started
        would take a share too large for that long, and keep it, since a finished head is claimed
        again in the same transaction, so the newcomer could find nothing to do for a whole burst."""
        self._replicas = max(1, leases.count_live(conn, REPLICA_LEASE_PREFIX, now))
        self._counted_at = time.monotonic()

    def _claim_targets(self) -> set[str]:
        """The configured targets, and any other target rows were found queued for."""
        return self._targets

    def _report(self, attempt: Attempt) -> None:
        row, step = attempt.row, attempt.step
        self._metrics.deliveries.labels(row.target, step).inc()
        if step == "delivered":
            latency = (attempt.finished_at - row.enqueued_at).total_seconds()
            self._metrics.delivery_latency.labels(row.target).observe(latency)
            log.debug(
                "delivered", run_id=row.run_id, event_id=row.event_id, target=row.target, attempts=row.attempts + 1
            )
        elif step == "retry":
            when = rfc3339(attempt.retry_at) if attempt.retry_at else None
            log.warning("delivery failed; will retry", **_about(row), error=attempt.outcome.detail, retry_at=when)
        else:
            log.error("delivery dead-lettered", **_about(row), error=attempt.outcome.detail, attempts=row.attempts + 1)

    async def _deliver(self, row: OutboxRow) -> None:
        try:
            outcome = await self._send(row)
        except BaseException:
            self._free(row)  # cut short at shutdown: nothing to record
            raise
        now = self._clock()
        step, retry_at = next_step(row, outcome, now, self._settings)
        self._finished.append(Attempt(row, outcome, step, retry_at, now))
        self._wake.set()  # record it, and let the queue's next row be claimed

    def _free(self, row: OutboxRow) -> None:
        """A slot is busy from the claim until the attempt is recorded, so what a crash
        can make us resend is bounded by ``concurrency`` per target."""
        self._busy[row.target] -= 1
        self._sending.discard((row.target, row.run_id))

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
