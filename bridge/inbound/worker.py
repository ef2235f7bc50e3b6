"""The inbox worker: claim stored Slack requests, act on Oz once, tell Slack, mark done.

Each row goes act → record outcome → tell → done, with a commit between steps,
so a crash or a transient failure resumes at the step that was not finished:
the follow-up or cancel is never repeated once its outcome is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import DBAPIError

from bridge.backoff import backoff_delay
from bridge.inbound.batching import GroupCommit
from bridge.inbound.calls import Transient
from bridge.inbound.outcome import InboxHandler, Outcome
from bridge.inbound.priority import AnswersFirst
from bridge.lifecycle import finish_within
from bridge.logs import get_logger
from bridge.store import inbox
from bridge.store.inbox import InboxRow

log = get_logger("bridge.inbound.worker")
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = 8
    check_interval: float = 1.0
    first_retry: float = 1.0
    max_backoff: float = 60.0
    # A follow-up delivered an hour late is more surprising than helpful: tell the person instead.
    max_age: float = 3600.0
    max_retry_after: float = 600.0
    lease: float = 120.0
    # Finished rows are kept well past Slack's retry window, so a late retry is still a duplicate.
    keep_finished: float = 3 * 86400.0
    purge_every: float = 3600.0
    shutdown_grace: float = 10.0


def retry_delay(attempt: int, settings: WorkerSettings, retry_after: float | None, jitter: float) -> float:
    """Seconds before inbox retry number ``attempt``, by the worker settings."""
    return backoff_delay(
        attempt,
        first=settings.first_retry,
        cap=settings.max_backoff,
        max_retry_after=settings.max_retry_after,
        retry_after=retry_after,
        jitter=jitter,
    )


class InboxWorker:
    def __init__(
        self,
        writes: GroupCommit,
        handlers: Mapping[str, InboxHandler],
        settings: WorkerSettings | None = None,
        clock: Clock = utcnow,
        priority: AnswersFirst | None = None,
    ) -> None:
        # Every step's write joins the same group commits as the intake's inserts.
        self._writes = writes
        self._priority = priority or AnswersFirst()
        self._handlers = handlers
        self._settings = settings or WorkerSettings()
        self._clock = clock
        self.holder = f"inbox-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._last_purge: datetime | None = None

    def wake(self) -> None:
        """A row was just stored: look now instead of at the next check."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            # Cleared before looking, so a wake-up that comes while we look is not lost.
            self._wake.clear()
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._settings.check_interval)

    async def run_once(self) -> int:
        """Claim what is due and start processing it; how many rows were claimed. Never raises."""
        free = self._settings.concurrency - len(self._in_flight)
        try:
            async with self._priority.step():
                rows = await self._claim(free) if free > 0 else []
            await self._purge_now_and_then()
        except Exception:
            log.exception("inbox claim failed; will try again")
            return 0
        for row in rows:
            task = asyncio.create_task(self.process(row))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        return len(rows)

    async def drain(self) -> None:
        """Wait for rows in flight; for tests and shutdown."""
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()  # the thread's next reply may be claimable now

    async def stop(self) -> None:
        """Stop claiming; let rows in flight finish within the grace period, then hand back claims."""
        self._stopping.set()
        self._wake.set()
        await finish_within(set(self._in_flight), self._settings.shutdown_grace)
        await self._writes.run(lambda conn: inbox.release_claims(conn, self.holder))

    async def _claim(self, limit: int) -> list[InboxRow]:
        lease, now = timedelta(seconds=self._settings.lease), self._clock()
        return await self._writes.run(lambda conn: inbox.claim_due(conn, self.holder, now, limit, lease))

    async def _purge_now_and_then(self) -> None:
        now = self._clock()
        if self._last_purge and (now - self._last_purge).total_seconds() < self._settings.purge_every:
            return
        self._last_purge = now
        before = now - timedelta(seconds=self._settings.keep_finished)
        await self._writes.run(lambda conn: inbox.purge_finished(conn, before))
        repaired = await self._writes.run(inbox.repair_heads)
        if repaired:
            log.warning("inbox queues had lost their head; repaired", queues=repaired)

    async def process(self, row: InboxRow) -> None:
        """Take one claimed row as far as it goes; never raises."""
        try:
            await self._process(row)
        except Exception:
            # The claim's lease runs out and the row comes back; nothing is lost.
            log.exception("inbox row could not be settled", inbox_event_id=row.event_id)

    async def _process(self, row: InboxRow) -> None:
        handler = self._handlers.get(row.kind)
        if handler is None:
            await self._finish(row, "no handler for this kind of row")
            return
        outcome = Outcome.from_json(row.outcome) if row.outcome else None
        try:
            if outcome is None:
                async with self._priority.step():
                    outcome = await handler.act(row)
                if outcome.result != "ignored":  # nothing was done, so there is nothing to remember
                    done = outcome.to_json()
                    await self._writes.run(lambda conn: inbox.record_outcome(conn, row.event_id, done))
            async with self._priority.step():
                await handler.tell(row, outcome)
        except Transient as exc:
            await self._retry_or_give_up(row, handler, exc, acted=outcome is not None)
            return
        except DBAPIError:
            # The database, not the row, is at fault: the claim lapses and the row comes back.
            raise
        except Exception as exc:
            # A bug must not wedge the thread's queue: record it and move on.
            log.exception("inbox row failed", inbox_event_id=row.event_id, kind=row.kind)
            await self._fail(row, type(exc).__name__)
            return
        await self._finish(row, None)
        log.info("inbox row done", inbox_event_id=row.event_id, kind=row.kind, result=outcome.result)

    async def _retry_or_give_up(self, row: InboxRow, handler: InboxHandler, exc: Transient, acted: bool) -> None:
        now = self._clock()
        delay = retry_delay(row.attempts + 1, self._settings, exc.retry_after, random.random())
        retry_at = now + timedelta(seconds=delay)
        if retry_at <= row.received_at + timedelta(seconds=self._settings.max_age):
            await self._writes.run(lambda conn: inbox.mark_retry(conn, row.event_id, retry_at, exc.reason))
            log.warning(
                "inbox row will be retried",
                inbox_event_id=row.event_id,
                reason=exc.reason,
                retry_at=retry_at.isoformat(),
            )
            return
        if not acted:
            await self._tell_giving_up(row, handler, exc.reason)
        await self._fail(row, exc.reason)

    async def _tell_giving_up(self, row: InboxRow, handler: InboxHandler, reason: str) -> None:
        outcome = handler.give_up(row, reason)
        try:
            async with self._priority.step():
                await handler.tell(row, outcome)
        except Transient as exc:
            log.warning("could not tell Slack that an inbox row was given up", reason=exc.reason)

    async def _finish(self, row: InboxRow, error: str | None) -> None:
        now = self._clock()
        await self._writes.run(lambda conn: inbox.mark_done(conn, row.event_id, now))
        if error:
            log.warning("inbox row skipped", inbox_event_id=row.event_id, reason=error)

    async def _fail(self, row: InboxRow, error: str) -> None:
        now = self._clock()
        await self._writes.run(lambda conn: inbox.mark_failed(conn, row.event_id, now, error))
        log.error("inbox row given up", inbox_event_id=row.event_id, kind=row.kind, reason=error)
