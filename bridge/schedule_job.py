"""The scheduled job: stored snapshots + the clock → reminders, stuck runs, budgets, digests → outbox.

Leader-only, like polling, and it makes no API call. Each tick notices runs
the poller changed, reviews the runs that are due (``bridge.schedule`` decides),
and writes the events with the watches they update in one transaction, so a
crash or a second replica repeats nothing. Digests are claimed per (name,
scheduled time) in the transaction that queues them.

Time-based run events are judged "as of" the last successful poll: while
polling is stalled the snapshots may be stale, and a reminder for a run that
has in fact moved on (or a flood of ``run.stuck``) would be wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.cron import CronSchedule
from bridge.digest import DigestTally, DigestWindow, digest_event, due_time, first_baseline
from bridge.events import Event, rfc3339
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.routing import RunTarget, targets_for
from bridge.schedule import TimePolicy, review
from bridge.settings import DigestSettings, RouteSettings
from bridge.store import outbox
from bridge.store import runs as run_store
from bridge.store import schedule as store

log = get_logger("bridge.schedule")
Clock = Callable[[], datetime]

BATCH = 500  # runs noticed, and watches reviewed, per tick
# Like the poller's sweep: now and then, re-read a margin behind the cursor for poll pages
# that committed late (a lease changing hands) or a leader whose clock runs behind.
NOTICE_MARGIN = timedelta(minutes=2)
NOTICE_SWEEP = timedelta(minutes=1)
DIGEST_GRACE = timedelta(minutes=5)  # how long a digest waits for a poll after its time before going out anyway


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ScheduledDigest:
    settings: DigestSettings
    schedule: CronSchedule
    targets: tuple[str, ...]


class ScheduleJob:
    def __init__(
        self,
        engine: AsyncEngine,
        policy: TimePolicy,
        routes: Sequence[RouteSettings],
        digests: Sequence[DigestSettings],
        metrics: Metrics,
        *,
        usable_targets: Collection[str] | None = None,
        clock: Clock = utcnow,
        on_committed: Callable[[], None] = lambda: None,
        run_targets: Sequence[RunTarget] = (),
        batch: int = BATCH,
    ) -> None:
        self._engine = engine
        self._policy = policy
        self._routes = list(routes)
        # A run told in its own Slack thread hears its reminders there too, whatever the routes say.
        self._run_targets = list(run_targets)
        usable = set(usable_targets) if usable_targets is not None else None
        self._digests = [
            ScheduledDigest(d, d.schedule(), tuple(t for t in d.to if usable is None or t in usable)) for d in digests
        ]
        self._metrics = metrics
        self._clock = clock
        self._on_committed = on_committed
        self._batch = batch
        self.last_error: str | None = None
        self._waiting: dict[str, datetime] = {}  # digest → since when it has been due, waiting for a poll
        self._swept_at: datetime | None = None

    @property
    def needed(self) -> bool:
        return self._policy.enabled or bool(self._digests)

    async def tick(self) -> None:
        """One scheduled run; failures are logged and counted, and the next tick tries again."""
        try:
            queued = await self.run_once()
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._metrics.schedule_ticks.labels("error").inc()
            log.warning("scheduled job failed; will try again next tick", error=self.last_error)
            return
        self.last_error = None
        self._metrics.schedule_ticks.labels("ok").inc()
        self._metrics.schedule_last_success.set(self._clock().timestamp())
        if queued:
            self._on_committed()

    async def run_once(self) -> int:
        """Review due runs, then every digest; returns how many events were queued."""
        async with self._engine.connect() as conn:
            polled = await run_store.load_poll_state(conn)
        as_of = None
        if polled is not None and polled.last_success_at is not None:
            # Run timestamps are the API's: judge them in API time (the offset the poller measured).
            offset = timedelta(seconds=polled.clock_offset or 0.0)
            as_of = min(self._clock(), polled.last_success_at) + offset
        queued = 0
        if as_of is not None and self._policy.enabled:
            queued += await self._review_runs(as_of)
        for digest in self._digests:
            queued += await self._send_digest(digest, as_of)
        return queued

    # ---- runs ------------------------------------------------------------------------------------

    async def _review_runs(self, as_of: datetime) -> int:
        now = self._clock()
        async with self._engine.begin() as conn:
            await self._notice(conn, as_of)
            due = await store.due_watches(conn, as_of, self._batch)
            reviews = [review(watch, stored, as_of, self._policy, rfc3339(now)) for watch, stored in due]
            events = [event for r in reviews for event in r.events]
            await outbox.enqueue(
                conn, [(e, t) for e in events for t in targets_for(e, self._routes, self._run_targets)], now
            )
            await store.save_watches(conn, [r.watch for r in reviews])
            if len(due) < self._batch:
                await store.forget_orphans(conn, as_of, self._batch)
        self._count(events)
        return len(events)

    async def _notice(self, conn: AsyncConnection, as_of: datetime) -> None:
        """Make runs the poller changed due for a look (and all unfinished ones when the settings changed)."""
        state = await store.load_state(conn)
        policy = self._policy.fingerprint()
        cursor = state.seen_cursor if state is not None else as_of
        if state is None or state.policy != policy:
            log.info("arming reminders, stuck-run checks and budgets for every unfinished run", policy=policy)
            await store.arm_unfinished(conn, as_of)
            cursor = as_of
        since = cursor
        if self._swept_at is None or as_of - self._swept_at >= NOTICE_SWEEP:
            since, self._swept_at = cursor - NOTICE_MARGIN, as_of
        newest = await store.notice_changes(conn, since, as_of, self._batch)
        await store.save_state(conn, max(cursor, newest) if newest else cursor, policy)

    # ---- digests ---------------------------------------------------------------------------------

    async def _send_digest(self, digest: ScheduledDigest, as_of: datetime | None) -> int:
        name, now = digest.settings.name, self._clock()
        async with self._engine.begin() as conn:
            last = await store.last_scheduled(conn, name)
            if last is None:
                await store.record_send(conn, name, first_baseline(digest.schedule, now), None, now)
                return 0
            scheduled = due_time(digest.schedule, last, now)
            if scheduled is None or not self._polled_since(name, scheduled, as_of, now):
                return 0
            event = await self._digest_event(conn, digest, scheduled, now)
            if not await store.record_send(conn, name, scheduled, event.id, now):
                return 0
            await outbox.enqueue(conn, [(event, target) for target in digest.targets], now)
        if scheduled < now - DIGEST_GRACE:
            log.info("made up a digest missed while the bridge was down", digest=name, scheduled=rfc3339(scheduled))
        self._count([event])
        return 1

    def _polled_since(self, name: str, scheduled: datetime, as_of: datetime | None, now: datetime) -> bool:
        """Whether a poll after ``scheduled`` succeeded, so the digest counts what happened up to it.

        While polling fails the digest waits, but not for ever: after ``DIGEST_GRACE`` it goes
        out with the snapshots there are.
        """
        if as_of is not None and as_of >= scheduled:
            self._waiting.pop(name, None)
            return True
        since = self._waiting.setdefault(name, now)
        if now - since < DIGEST_GRACE:
            return False
        log.warning("polling has stalled; sending the digest from older snapshots", digest=name)
        self._waiting.pop(name, None)
        return True

    async def _digest_event(
        self, conn: AsyncConnection, digest: ScheduledDigest, scheduled: datetime, now: datetime
    ) -> Event:
        settings = digest.settings
        tally = DigestTally(DigestWindow.ending(settings.name, settings.timezone, scheduled, settings.window))
        async for run, updated_at in store.runs_updated_after(conn, tally.window.start):
            tally.add(run, updated_at)
        return digest_event(tally.summary(), rfc3339(now))

    def _count(self, events: list[Event]) -> None:
        for event in events:
            self._metrics.events.labels(event.type).inc()
            log.debug("event from the clock", run_id=event.run_id, event_id=event.id, event_type=event.type)
        if events:
            log.info("events from the clock", events=len(events), types=sorted({e.type for e in events}))
