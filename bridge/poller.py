"""The poll tick: pages since the cursor → diff → routes → one transaction per page."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from oz_agent_sdk import AsyncOzAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.diff import diff_run, is_news, parse_time, snapshot_of
from bridge.events import Event, JSONDict, rfc3339
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.oz import MalformedRun, run_pages
from bridge.routing import RunTarget, targets_for
from bridge.settings import PollSettings, RouteSettings, parse_start
from bridge.store import outbox
from bridge.store import runs as run_store
from bridge.store.runs import PollState

log = get_logger("bridge.poller")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class PollResult:
    pages: int = 0
    runs: int = 0
    events: int = 0
    swept: bool = False


def sweep_from(cursor: datetime, lookback: float, previous_sweep: datetime | None) -> datetime:
    """Where a sweep starts reading, for updates that became visible after their ``updated_at``.

    A late update becomes visible within ``lookback`` of its ``updated_at``, so one
    that appeared after the previous sweep began has an ``updated_at`` after that
    start minus ``lookback`` (minus ``lookback`` again for clock skew between us
    and the API). Reading further back than that only re-reads what an earlier
    sweep already saw: after a burst and a quiet spell, sweeps shrink back to one
    small request instead of re-reading the burst forever while the cursor rests.
    """
    window = timedelta(seconds=lookback)
    start = cursor - window
    if previous_sweep is not None:
        start = max(start, previous_sweep - 2 * window)
    return min(cursor, start)


def failure_backoff(failures: int, interval: float, jitter: Callable[[], float] = random.random) -> float:
    """Seconds to wait after ``failures`` failed polls in a row: doubling, at most 4 intervals."""
    base: float = min(interval * 2.0 ** min(failures - 1, 16), 4 * interval)
    return base * (0.5 + 0.5 * jitter())


class Poller:
    def __init__(
        self,
        engine: AsyncEngine,
        client: AsyncOzAPI,
        poll: PollSettings,
        routes: list[RouteSettings],
        metrics: Metrics,
        on_committed: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utcnow,
        run_targets: Sequence[RunTarget] = (),
    ) -> None:
        self._engine = engine
        self._client = client
        self._poll = poll
        self._routes = routes
        self._run_targets = run_targets
        self._metrics = metrics
        self._on_committed = on_committed
        self._clock = clock
        self.failures = 0
        self.last_success: datetime | None = None
        self.last_error: str | None = None

    async def prepare(self) -> PollState:
        """Fix the start point on first boot; later boots keep the stored one."""
        async with self._engine.begin() as conn:
            state = await run_store.init_poll_state(conn, parse_start(self._poll.start, self._clock()))
        self.last_success = state.last_success_at
        return state

    async def tick(self) -> float | None:
        """One scheduled poll. Returns the seconds to back off after a failure, else None."""
        try:
            result = await self.poll_once()
        except Exception as exc:
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._metrics.polls.labels("error").inc()
            self._metrics.poll_failures_in_a_row.set(self.failures)
            delay = failure_backoff(self.failures, self._poll.interval)
            log.warning("poll failed; backing off", error=self.last_error, failures=self.failures, retry_in=delay)
            return delay
        self.failures = 0
        self.last_error = None
        self._metrics.polls.labels("ok").inc()
        self._metrics.poll_failures_in_a_row.set(0)
        if result.events:
            log.info("poll found changes", pages=result.pages, runs=result.runs, events=result.events)
        return None

    async def poll_once(self) -> PollResult:
        async with self._engine.begin() as conn:
            state = await run_store.load_poll_state(conn)
        if state is None:
            state = await self.prepare()
        now = self._clock()
        sweep_due = state.last_sweep_at is None or (now - state.last_sweep_at).total_seconds() >= self._poll.sweep
        updated_after = state.cursor
        if sweep_due:
            updated_after = sweep_from(state.cursor, self._poll.lookback, state.last_sweep_at)
        result = PollResult(swept=sweep_due)
        pages = run_pages(
            self._client,
            updated_after,
            self._poll.page_size,
            self._poll.filters,
            on_request=self._metrics.poll_requests.inc,
            on_malformed=self._skip_malformed,
        )
        async for page in pages:
            result.pages += 1
            result.runs += len(page)
            result.events += await self._commit_page(page, state.start_point)
        finished = self._clock()
        async with self._engine.begin() as conn:
            await run_store.record_poll_success(conn, finished, now if sweep_due else None)
        self.last_success = finished
        self._metrics.last_poll_success.set(finished.timestamp())
        return result

    def _skip_malformed(self, problem: MalformedRun) -> None:
        self._metrics.malformed_runs.inc()
        log.error("run left out: the API's answer for it is malformed", problem=str(problem))

    async def _commit_page(self, page: list[JSONDict], start_point: datetime) -> int:
        """Snapshots, outbox rows and cursor of one page, all or nothing."""
        now = self._clock()
        detected_at = rfc3339(now)
        events: list[Event] = []
        async with self._engine.begin() as conn:
            stored = await run_store.load_snapshots(conn, (run["run_id"] for run in page))
            for run in page:
                previous = stored.get(run["run_id"])
                if not is_news(previous, run, start_point):
                    continue
                events += diff_run(previous, run, start_point, detected_at)
                await run_store.save_snapshot(conn, run, known=previous is not None, seen_at=now)
                stored[run["run_id"]] = snapshot_of(run)
            reach = [(event, targets_for(event, self._routes, self._run_targets)) for event in events]
            deliveries = [(event, target) for event, targets in reach for target in targets]
            await outbox.enqueue(conn, deliveries, now)
            if page:
                await run_store.advance_cursor(conn, max(parse_time(run["updated_at"]) for run in page))
        self._metrics.runs_seen.inc(len(page))
        for event in events:
            self._metrics.events.labels(event.type).inc()
            log.debug("event detected", run_id=event.run_id, event_id=event.id, event_type=event.type)
        if deliveries:
            self._on_committed()
        return len(events)
