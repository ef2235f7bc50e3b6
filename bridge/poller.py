"""The poll tick: reads since the cursor (and a sweep when due) → diff → routes → one transaction per page.

Time comes from the API's answers (``ApiClock``); which reads a tick makes
comes from ``poll_plan``; what of a page is usable from ``records``. This
module runs them and keeps the one invariant that matters: a page's
snapshots, outbox rows and cursor are committed together or not at all.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from oz_agent_sdk import AsyncOzAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.api_time import DATE_RESOLUTION, ApiClock
from bridge.diff import diff_run, is_news, snapshot_of
from bridge.events import Event, JSONDict, rfc3339
from bridge.left_out import LeftOutReport
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.oz import RunsPage, fetch_page, pages
from bridge.poll_plan import Read, ReadOutcome, plan_reads, swept_after
from bridge.poll_problems import PAGE_LIMIT, STALL_REASONS, PollProblem, explain
from bridge.readiness import PollStatus, skew_warning
from bridge.records import REASONS, UNPROCESSABLE, LeftOut, newest_updated_at, read_page
from bridge.routing import RunTarget, targets_for
from bridge.settings import PollSettings, RouteSettings, parse_start
from bridge.store import outbox
from bridge.store import runs as run_store
from bridge.store.runs import Observed, PollState

log = get_logger("bridge.poller")

# A run may be stamped a little after the Date of the answer that carries it
# (Date is floored to the second, and the API's servers are not one clock).
FUTURE_TOLERANCE = timedelta(seconds=2)
# A Retry-After longer than this is not waited out in one go: the poll asks again.
MAX_RETRY_AFTER = 600.0


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class PollResult:
    pages: int = 0
    runs: int = 0
    events: int = 0
    swept: bool = False
    cut_short: bool = False


def failure_backoff(failures: int, interval: float, jitter: Callable[[], float] = random.random) -> float:
    """Seconds to wait after ``failures`` failed polls in a row: doubling, at most 4 intervals."""
    base: float = min(interval * 2.0 ** min(failures - 1, 16), 4 * interval)
    return base * (0.5 + 0.5 * jitter())


def backoff_for(problem: PollProblem, failures: int, interval: float) -> float:
    """The API's own Retry-After when it gave one (within reason), else the doubling backoff."""
    if problem.retry_after is not None:
        return min(problem.retry_after, MAX_RETRY_AFTER)
    return failure_backoff(failures, interval)


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
        self._api_clock = ApiClock(clock)
        self._left_out = LeftOutReport(metrics)
        for reason in REASONS:  # every series exists from the start, at 0, for rates and alerts
            metrics.malformed_runs.labels(reason)
        for reason in STALL_REASONS:
            metrics.poll_stalls.labels(reason)
        self._status = PollStatus()
        self._warned_skew = False
        self.last_success: datetime | None = None

    @property
    def failures(self) -> int:
        return self._status.failures

    @property
    def last_error(self) -> str | None:
        return self._status.error

    def status(self) -> PollStatus:
        return self._status

    def api_now(self) -> datetime:
        """The API's time as this poller knows it (its last answer's Date, or the stored offset)."""
        return self._api_clock.now()

    async def prepare(self) -> PollState:
        """Fix the start point on first boot, in the API's time; later boots keep the stored one."""
        async with self._engine.begin() as conn:
            state = await run_store.load_poll_state(conn)
        if state is None:
            api_now = await self._ask_api_time()
            async with self._engine.begin() as conn:
                state = await run_store.init_poll_state(conn, parse_start(self._poll.start, api_now))
        elif state.clock_offset is not None and self._api_clock.offset is None:
            self._api_clock.offset = timedelta(seconds=state.clock_offset)  # until the first answer says
        self.last_success = state.last_success_at
        return state

    async def tick(self) -> float | None:
        """One scheduled poll. Returns the seconds to back off after a failure, else None."""
        try:
            result = await self.poll_once()
        except Exception as exc:
            return await self._failed(explain(exc, self._api_clock.now()))
        self._status = PollStatus(
            clock_skew=self._api_clock.skew_seconds,
            cut_short=f"the last poll stopped at the page limit ({self._poll.max_pages} pages); "
            "the next one carries on from the cursor"
            if result.cut_short
            else None,
        )
        self._metrics.polls.labels("ok").inc()
        self._metrics.poll_failures_in_a_row.set(0)
        self._metrics.poll_backoff.set(0)
        if result.cut_short:
            self._metrics.poll_stalls.labels(PAGE_LIMIT).inc()
        if result.events:
            log.info("poll found changes", pages=result.pages, runs=result.runs, events=result.events)
        return None

    async def poll_once(self) -> PollResult:
        async with self._engine.begin() as conn:
            state = await run_store.load_poll_state(conn)
        if state is None:
            state = await self.prepare()
        lookback = self._poll.lookback
        swept = state.swept_through or state.cursor - timedelta(seconds=lookback)
        reads = plan_reads(state.cursor, swept, self._api_clock.now(), lookback, self._poll.sweep)
        result = PollResult(swept=any(read.sweep for read in reads))
        outcomes = []
        for read in reads:
            outcomes.append(await self._read(read, state.start_point, result))
            if result.cut_short:
                break
        finished = self._clock()
        async with self._engine.begin() as conn:
            swept = swept_after(swept, outcomes, lookback)
            await run_store.record_poll_success(conn, finished, swept, self._api_clock.skew_seconds)
        self.last_success = finished
        self._metrics.last_poll_success.set(finished.timestamp())
        self._note_skew()
        return result

    async def _read(self, read: Read, start_point: datetime, result: PollResult) -> ReadOutcome:
        params: dict[str, Any] = {
            **self._poll.filters,
            "sort_by": "updated_at",
            "sort_order": "asc",
            "limit": self._poll.page_size,
            "updated_after": read.updated_after,
        }
        first: datetime | None = None
        last: RunsPage | None = None
        budget = self._poll.max_pages - result.pages
        async for page in pages(self._client, params, self._api_clock, budget, self._metrics.poll_requests.inc):
            first, last = first or page.answered_at, page
            result.pages += 1
            newest = await self._commit_page(page, start_point, result)
            if read.until is not None and newest is not None and newest >= read.until:
                return ReadOutcome(read, complete=True, answered_at=first)
        complete = last is None or last.next_cursor is None
        result.cut_short = not complete
        return ReadOutcome(read, complete=complete, answered_at=first)

    async def _commit_page(self, page: RunsPage, start_point: datetime, result: PollResult) -> datetime | None:
        """Snapshots, outbox rows and cursor of one page, all or nothing; returns the page's newest updated_at."""
        self._metrics.poll_bytes.inc(page.size)
        usable = read_page(page.entries, page.answered_at + DATE_RESOLUTION + FUTURE_TOLERANCE)
        self._left_out(usable.left_out)
        now = self._clock()
        newest = newest_updated_at(usable.runs)
        async with self._engine.begin() as conn:
            stored = await run_store.load_snapshots(conn, (run["run_id"] for run in usable.runs))
            events, deliveries, observed = self._diff(usable.runs, stored, start_point, rfc3339(now))
            await run_store.save_snapshots(conn, observed, now)
            await outbox.enqueue(conn, deliveries, now)
            if newest is not None:
                await run_store.advance_cursor(conn, newest)
        result.runs += len(usable.runs)
        result.events += len(events)
        self._metrics.runs_seen.inc(len(usable.runs))
        for event in events:
            self._metrics.events.labels(event.type).inc()
        if deliveries:
            self._on_committed()
        return newest

    def _diff(
        self, runs: list[JSONDict], stored: dict[str, Any], start_point: datetime, detected_at: str
    ) -> tuple[list[Event], list[tuple[Event, str]], list[Observed]]:
        events: list[Event] = []
        deliveries: list[tuple[Event, str]] = []
        observed: list[Observed] = []
        for run in runs:
            previous = stored.get(run["run_id"])
            try:
                if not is_news(previous, run, start_point):
                    continue
                found = diff_run(previous, run, start_point, detected_at)
                routed = [
                    (event, target) for event in found for target in targets_for(event, self._routes, self._run_targets)
                ]
                snapshot = snapshot_of(run, previous)
            except Exception as exc:
                self._left_out([LeftOut(UNPROCESSABLE, str(run["run_id"]), f"{type(exc).__name__}: {exc}")])
                continue
            events += found
            deliveries += routed
            observed.append(Observed(run, snapshot))
        return events, deliveries, observed

    async def _ask_api_time(self) -> datetime:
        """The API's time now, from the cheapest answer it gives (one run of the listing)."""
        self._metrics.poll_requests.inc()
        page = await fetch_page(self._client, {**self._poll.filters, "limit": 1}, self._api_clock)
        return page.answered_at

    async def _failed(self, problem: PollProblem) -> float:
        failures = self._status.failures + 1
        delay = backoff_for(problem, failures, self._poll.interval)
        skew = self._api_clock.skew_seconds
        self._status = PollStatus(failures, problem.reason, problem.text, delay, skew)
        self._metrics.polls.labels("error").inc()
        self._metrics.poll_stalls.labels(problem.reason).inc()
        self._metrics.poll_failures_in_a_row.set(failures)
        self._metrics.poll_backoff.set(delay)
        log.warning(
            "poll failed; backing off", reason=problem.reason, error=problem.text, failures=failures, retry_in=delay
        )
        try:
            async with self._engine.begin() as conn:
                await run_store.record_poll_problem(conn, problem.text, skew)
        except Exception:
            log.debug("could not store the poll problem", exc_info=True)
        return delay

    def _note_skew(self) -> None:
        skew = self._api_clock.skew_seconds
        if skew is None:
            return
        self._metrics.api_clock_skew.set(skew)
        warning = skew_warning(skew)
        if warning is not None and not self._warned_skew:
            log.warning("clock skew between the Oz API and this replica", skew_seconds=round(skew, 1), note=warning)
        elif warning is None and self._warned_skew:
            log.info("clock skew back within bounds", skew_seconds=round(skew, 1))
        self._warned_skew = warning is not None
