"""The scheduled job over a real database with a controlled clock: each time-based event exactly once,
across ticks, restarts and replicas, and never for a run that has moved on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.events import event_id
from bridge.metrics import Metrics
from bridge.schedule import TimePolicy
from bridge.schedule_job import ScheduleJob
from bridge.settings import DigestSettings, RouteSettings
from bridge.store import runs as run_store
from bridge.store.engine import create_engine, migrate
from bridge.store.tables import outbox, run_watches
from tests.conftest import make_run
from tests.pg import scratch_database

T0 = datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
EVERYTHING = [RouteSettings(name="all", events=["*"], to=["hook"])]
POLICY = TimePolicy(blocked_every=30 * 60, stuck_after=2 * 3600, run_usd=5.0)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bridge.db'}"
        return
    async with scratch_database() as url:
        yield url


@pytest.fixture
async def engines(db_url: str) -> AsyncIterator[Callable[[], AsyncEngine]]:
    made: list[AsyncEngine] = []

    def make() -> AsyncEngine:
        made.append(create_engine(db_url))
        return made[-1]

    await migrate(make())
    yield make
    for engine in made:
        await engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


def job(engine: AsyncEngine, clock: Clock, policy: TimePolicy = POLICY, **kwargs: Any) -> ScheduleJob:
    return ScheduleJob(engine, policy, EVERYTHING, kwargs.pop("digests", []), Metrics(), clock=clock, **kwargs)


async def poll(engine: AsyncEngine, clock: Clock, *runs: dict[str, Any]) -> None:
    """What a successful poll leaves behind: snapshots seen now, and the poll's success time."""
    async with engine.begin() as conn:
        await run_store.init_poll_state(conn, T0 - timedelta(days=30))
        for run in runs:
            await run_store.save_snapshot(conn, run, seen_at=clock.now)
        await run_store.record_poll_success(conn, clock.now, clock.now, None)


def snapshot(state: str, updated: datetime, run_id: str = "run-1", **extra: Any) -> dict[str, Any]:
    created = extra.pop("created", T0 - 10 * MINUTE)
    return make_run(run_id, state, updated_at=updated.isoformat(), created_at=created.isoformat(), **extra)


async def told(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(outbox.c.event_type, outbox.c.event_id).order_by(outbox.c.id))
        return [(row.event_type, row.event_id) for row in rows]


def reminder(number: int, since: str = "2026-01-06T08:00:00Z", run_id: str = "run-1") -> tuple[str, str]:
    return ("run.still_blocked", event_id(run_id, "run.still_blocked", since, str(number)))


async def advance(engine: AsyncEngine, clock: Clock, job_: ScheduleJob, minutes: int, *runs: dict[str, Any]) -> None:
    """Time passes; the poller keeps polling (seeing ``runs`` changed, if any); the job ticks."""
    clock.now += minutes * MINUTE
    await poll(engine, clock, *runs)
    await job_.run_once()


async def test_first_reminder_then_repeats_then_nothing_once_the_run_moves(
    engines: Callable[[], AsyncEngine], clock: Clock
) -> None:
    engine = engines()
    clock_job = job(engine, clock)
    await poll(engine, clock, snapshot("BLOCKED", T0))
    await clock_job.run_once()
    await advance(engine, clock, clock_job, 29)
    assert await told(engine) == []
    await advance(engine, clock, clock_job, 1)
    assert await told(engine) == [reminder(1)]
    for _ in range(6):
        await advance(engine, clock, clock_job, 10)
    assert await told(engine) == [reminder(1), reminder(2), reminder(3)]
    await advance(engine, clock, clock_job, 5, snapshot("INPROGRESS", clock.now + 5 * MINUTE))
    await advance(engine, clock, clock_job, 60)
    assert await told(engine) == [reminder(1), reminder(2), reminder(3)]


async def test_a_restart_in_between_repeats_nothing_and_keeps_the_rhythm(
    engines: Callable[[], AsyncEngine], clock: Clock
) -> None:
    engine = engines()
    await poll(engine, clock, snapshot("BLOCKED", T0))
    await advance(engine, clock, job(engine, clock), 31)
    assert await told(engine) == [reminder(1)]
    restarted = job(engines(), clock)  # a new process: nothing in memory
    await advance(engine, clock, restarted, 1)
    await advance(engine, clock, restarted, 28)
    assert await told(engine) == [reminder(1), reminder(2)]


async def test_two_replicas_ticking_together_tell_each_reminder_once(
    engines: Callable[[], AsyncEngine], clock: Clock
) -> None:
    engine = engines()
    replicas = [job(engines(), clock), job(engines(), clock)]
    await poll(engine, clock, snapshot("BLOCKED", T0), snapshot("INPROGRESS", T0, run_id="run-2"))
    for _ in range(15):
        clock.now += 10 * MINUTE
        await poll(engine, clock)
        await asyncio.gather(*(replica.run_once() for replica in replicas))
    kinds = await told(engine)
    assert kinds.count(("run.stuck", event_id("run-2", "run.stuck", "2026-01-06T08:00:00Z"))) == 1
    assert [k for k in kinds if k[0] == "run.still_blocked"] == [reminder(n) for n in (1, 2, 3, 4, 5)]


async def test_a_run_that_moves_between_noticing_and_review_gets_nothing(
    engines: Callable[[], AsyncEngine], clock: Clock
) -> None:
    engine = engines()
    clock_job = job(engine, clock)
    await poll(engine, clock, snapshot("BLOCKED", T0))
    await clock_job.run_once()
    clock.now += 45 * MINUTE
    # The poller saw it move (the job has not noticed yet); the review reads the snapshot it locks.
    await poll(engine, clock, snapshot("SUCCEEDED", clock.now))
    await clock_job.run_once()
    assert await told(engine) == []


async def test_a_run_the_poller_is_changing_right_now_is_left_for_the_next_tick(
    engines: Callable[[], AsyncEngine], clock: Clock
) -> None:
    engine = engines()
    clock_job = job(engines(), clock)
    await poll(engine, clock, snapshot("BLOCKED", T0))
    await clock_job.run_once()
    clock.now += 45 * MINUTE  # reminder 1 is due by the stored snapshot
    await poll(engine, clock)
    async with engine.begin() as poller_page:  # a poll page, not committed yet, in which the run has moved on
        moved = snapshot("SUCCEEDED", clock.now)
        await run_store.save_snapshot(poller_page, moved, seen_at=clock.now)
        tick = asyncio.create_task(clock_job.run_once())
        await asyncio.sleep(0.5)  # PostgreSQL: the job skips the locked run; SQLite: it waits for the page
    await tick
    await clock_job.run_once()
    assert await told(engine) == []


async def test_stuck_and_over_budget_are_each_told_once(engines: Callable[[], AsyncEngine], clock: Clock) -> None:
    engine = engines()
    clock_job = job(engine, clock)
    cheap = snapshot("INPROGRESS", T0, request_usage={"inference_cost_usd": 1.0})
    await poll(engine, clock, cheap)
    await clock_job.run_once()
    pricey = snapshot("INPROGRESS", T0 + MINUTE, request_usage={"inference_cost_usd": 6.0})
    await advance(engine, clock, clock_job, 1, pricey)
    await advance(engine, clock, clock_job, 1, snapshot("INPROGRESS", T0 + 2 * MINUTE, request_usage={"x_cost_usd": 9}))
    for _ in range(30):
        await advance(engine, clock, clock_job, 10)
    assert [kind for kind, _ in await told(engine)] == ["run.cost_exceeded", "run.stuck"]


async def test_runs_ended_before_the_job_first_ran_are_left_alone(
    engines: Callable[[], AsyncEngine], clock: Clock
) -> None:
    engine = engines()
    old = snapshot("SUCCEEDED", T0 - 60 * MINUTE, run_id="old", request_usage={"inference_cost_usd": 50.0})
    waiting = snapshot("BLOCKED", T0 - 45 * MINUTE, run_id="waiting")
    clock.now -= 60 * MINUTE
    await poll(engine, clock, old, waiting)
    clock.now += 60 * MINUTE
    await poll(engine, clock)
    await job(engine, clock).run_once()  # first run ever: arms what has not ended
    assert await told(engine) == [reminder(1, "2026-01-06T07:15:00Z", "waiting")]


async def test_settings_that_change_rearm_unfinished_runs(engines: Callable[[], AsyncEngine], clock: Clock) -> None:
    engine = engines()
    await poll(engine, clock, snapshot("BLOCKED", T0))
    await advance(engine, clock, job(engine, clock, TimePolicy(stuck_after=3600)), 40)
    assert await told(engine) == []
    await advance(engine, clock, job(engine, clock), 1)  # reminders switched on while it waits
    assert await told(engine) == [reminder(1)]


async def test_nothing_is_judged_while_polling_has_stalled(engines: Callable[[], AsyncEngine], clock: Clock) -> None:
    engine = engines()
    clock_job = job(engine, clock)
    await poll(engine, clock, snapshot("INPROGRESS", T0))
    await clock_job.run_once()
    clock.now += 5 * 60 * MINUTE  # five hours without a successful poll: snapshots may be stale
    await clock_job.run_once()
    assert await told(engine) == []
    await poll(engine, clock)
    await clock_job.run_once()
    assert [kind for kind, _ in await told(engine)] == ["run.stuck"]


async def watched(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return len((await conn.execute(select(run_watches.c.run_id))).all())


async def test_each_tick_notices_and_reviews_a_bounded_batch(engines: Callable[[], AsyncEngine], clock: Clock) -> None:
    engine = engines()
    clock_job = job(engine, clock, batch=10)
    await poll(engine, clock, *[snapshot("BLOCKED", T0, run_id=f"old-{n:02}") for n in range(25)])
    clock.now += 31 * MINUTE
    await poll(engine, clock)
    reviewed = []
    for _ in range(4):
        await clock_job.run_once()  # the first arms all 25 unfinished runs in one statement
        reviewed.append(len(await told(engine)))
    assert reviewed == [10, 20, 25, 25]
    await poll(engine, clock, *[snapshot("QUEUED", clock.now, run_id=f"new-{n:02}") for n in range(25)])
    noticed = []
    for _ in range(4):
        await clock_job.run_once()
        noticed.append(await watched(engine) - 25)
    assert noticed == [10, 20, 25, 25]


# ---- digests -------------------------------------------------------------------------------------


def daily(**fields: Any) -> DigestSettings:
    return DigestSettings.model_validate({"name": "daily", "cron": "0 9 * * *", "to": ["hook"], **fields})


async def digests(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(outbox.c.payload).where(outbox.c.event_type == "digest"))
        return [row.payload["digest"] for row in rows]


async def test_a_digest_goes_out_once_at_its_time_with_the_windows_runs(
    engines: Callable[[], AsyncEngine], clock: Clock
) -> None:
    engine = engines()
    replicas = [job(engines(), clock, TimePolicy(), digests=[daily()]) for _ in range(2)]
    await poll(engine, clock)
    await asyncio.gather(*(r.run_once() for r in replicas))
    failed = snapshot("FAILED", T0 + 30 * MINUTE, status_message={"message": "boom"})
    await poll(engine, clock, failed, snapshot("SUCCEEDED", T0 + 40 * MINUTE, run_id="run-2"))
    clock.now = T0 + 60 * MINUTE  # 09:00
    await poll(engine, clock)
    for _ in range(3):
        await asyncio.gather(*(r.run_once() for r in replicas))
    [digest] = await digests(engine)
    assert digest["runs"] == 2 and digest["by_state"] == {"FAILED": 1, "SUCCEEDED": 1}
    assert digest["failed"][0]["status_message"] == {"message": "boom"}
    assert digest["window_end"] == "2026-01-06T09:00:00Z"


async def test_a_digest_missed_while_down_is_made_up_once_and_only_the_latest(
    engines: Callable[[], AsyncEngine], clock: Clock
) -> None:
    engine = engines()
    await poll(engine, clock)
    await job(engine, clock, TimePolicy(), digests=[daily()]).run_once()  # 08:00, first sight: nothing missed
    clock.now = T0 + 3 * 24 * 60 * MINUTE + 2 * 60 * MINUTE  # back three days later, at 10:00
    restarted = job(engines(), clock, TimePolicy(), digests=[daily()])
    await restarted.run_once()
    assert await digests(engine) == []  # waits for a poll after its time, so the counts are current
    await poll(engine, clock)
    await restarted.run_once()
    await restarted.run_once()
    assert [d["window_end"] for d in await digests(engine)] == ["2026-01-09T09:00:00Z"]


async def test_a_digest_never_goes_to_a_target_that_cannot_be_used(
    engines: Callable[[], AsyncEngine], clock: Clock
) -> None:
    engine = engines()
    both = daily(to=["hook", "slack-off"])
    clock_job = job(engine, clock, TimePolicy(), digests=[both], usable_targets={"hook"})
    await poll(engine, clock)
    await clock_job.run_once()
    clock.now = T0 + 61 * MINUTE
    await poll(engine, clock)
    await clock_job.run_once()
    async with engine.connect() as conn:
        targets = [row.target for row in await conn.execute(select(outbox.c.target))]
    assert targets == ["hook"]


async def test_a_digest_waits_for_a_poll_but_not_for_ever(engines: Callable[[], AsyncEngine], clock: Clock) -> None:
    engine = engines()
    clock_job = job(engine, clock, TimePolicy(), digests=[daily()])
    await poll(engine, clock)
    await clock_job.run_once()
    clock.now = T0 + 60 * MINUTE  # 09:00, and polling has stalled since 08:00
    await clock_job.run_once()
    clock.now += 4 * MINUTE
    await clock_job.run_once()
    assert await digests(engine) == []
    clock.now += MINUTE
    await clock_job.run_once()
    assert [d["window_end"] for d in await digests(engine)] == ["2026-01-06T09:00:00Z"]


async def test_a_failing_tick_is_counted_and_shown_in_readyz(tmp_path: Path) -> None:
    from bridge.app import Bridge
    from bridge.settings import Settings

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'bridge.db'}",
        oz={"api_key": "k", "base_url": "http://127.0.0.1:9/api/v1"},
        reminders={"stuck_after": 60},
        targets={"c": {"type": "console"}},
        routes=[{"name": "all", "events": ["*"], "to": ["c"]}],
    )
    bridge = Bridge(settings)
    try:
        await migrate(bridge.engine)
        clock = Clock(datetime.now(UTC))
        await poll(bridge.engine, clock)
        bridge.schedule = ScheduleJob(bridge.engine, TimePolicy(stuck_after=60), EVERYTHING, [], bridge.metrics)
        async with bridge.engine.begin() as conn:
            await conn.exec_driver_sql("DROP TABLE run_watches")  # the job's own table is gone
        await bridge.schedule.tick()
        ready, detail = await bridge.readiness()
        assert ready  # polling and delivery are fine; the failure is reported, not fatal
        assert "run_watches" in detail["schedule_error"]
        assert bridge.metrics.schedule_ticks.labels("error")._value.get() == 1
        assert b'oz_bridge_schedule_ticks_total{result="error"} 1.0' in bridge.metrics.render()
    finally:
        await bridge.oz.close()
        await bridge.engine.dispose()


async def test_a_poll_page_that_committed_late_is_noticed_by_the_next_sweep(
    engines: Callable[[], AsyncEngine], clock: Clock
) -> None:
    engine = engines()
    clock_job = job(engine, clock)
    await poll(engine, clock, snapshot("INPROGRESS", T0, run_id="early"))
    await clock_job.run_once()
    seen_late = clock.now - 30 * timedelta(seconds=1)  # seen before the cursor, committed after the job read it
    async with engine.begin() as conn:
        await run_store.save_snapshot(conn, snapshot("BLOCKED", seen_late, run_id="late"), seen_late)
    await clock_job.run_once()
    assert await watched(engine) == 1  # ordinary ticks read from the cursor on
    clock.now += MINUTE
    await poll(engine, clock)
    await clock_job.run_once()
    assert await watched(engine) == 2  # the sweep, once a minute, reads a margin behind it
