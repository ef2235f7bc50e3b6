"""The poller against the simulator (real SDK, real HTTP, real database), tick by tick."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from oz_agent_sdk import AsyncOzAPI, RateLimitError
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

import bridge.oz
from bridge.diff import parse_time
from bridge.metrics import Metrics
from bridge.poll_plan import JUST_BEFORE
from bridge.poll_problems import PollProblem
from bridge.poller import backoff_for, failure_backoff
from bridge.settings import RouteSettings
from bridge.sim import SimClock, Simulator, format_ts
from bridge.sim.artifacts import make_artifact
from tests.polling import NOW, cursor, list_requests, make_poller, queued_types, sdk_client

CREATED = ["run.created", "run.queued"]


@pytest.fixture
def sim() -> Simulator:
    return Simulator(api_key="k", clock=SimClock(frozen_at=NOW))


@pytest.fixture
async def oz(sim: Simulator) -> AsyncIterator[AsyncOzAPI]:
    async with sdk_client(sim) as client:
        yield client


def advance(sim: Simulator, seconds: float) -> None:
    assert isinstance(sim.clock, SimClock)
    sim.clock.advance(seconds)


def asked_after(sim: Simulator) -> list[Any]:
    return [parse_time(q["updated_after"][0]) for q in list_requests(sim) if "updated_after" in q]


async def test_first_boot_start_duration_reaches_back_without_announcing_old_runs(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator
) -> None:
    old = sim.create_run(
        created_at=format_ts(NOW - timedelta(hours=30)), updated_at=format_ts(NOW - timedelta(hours=2))
    )
    ancient = sim.create_run(
        created_at=format_ts(NOW - timedelta(hours=40)), updated_at=format_ts(NOW - timedelta(hours=30))
    )
    await make_poller(engine, oz, sim, start="24h").poll_once()
    assert await queued_types(engine, old["run_id"]) == ["run.queued"]
    assert await queued_types(engine, ancient["run_id"]) == []


async def test_an_ordinary_tick_asks_from_the_cursor_instant_and_an_idle_tick_is_one_request(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator
) -> None:
    poller = make_poller(engine, oz, sim, sweep=60, lookback=30)
    await poller.prepare()
    advance(sim, 1)
    run = sim.create_run()
    sim.clear_requests()
    for _ in range(5):
        assert await poller.tick() is None
        advance(sim, 5)
    stamped = parse_time(run["updated_at"])
    assert asked_after(sim) == [NOW - JUST_BEFORE] + [stamped - JUST_BEFORE] * 4
    assert all(q["sort_by"] == ["updated_at"] and q["sort_order"] == ["asc"] for q in list_requests(sim))
    assert await queued_types(engine, run["run_id"]) == CREATED  # the re-reads of the cursor's instant add nothing


async def test_a_run_tied_with_the_cursor_on_a_page_not_read_yet_is_caught_by_the_next_tick(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    poller = make_poller(engine, oz, sim, page_size=2)
    await poller.prepare()
    advance(sim, 1)
    tied = [sim.create_run(run_id=f"tie-{n}")["run_id"] for n in "abc"]  # one instant, two pages
    real_fetch = bridge.oz.fetch_page
    calls = 0

    async def second_page_fails(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionResetError("connection lost between pages")
        return await real_fetch(*args, **kwargs)

    monkeypatch.setattr(bridge.oz, "fetch_page", second_page_fails)
    assert await poller.tick() is not None
    assert [await queued_types(engine, r) for r in tied] == [CREATED, CREATED, []]
    monkeypatch.undo()
    assert await poller.tick() is None  # no sweep due: the ordinary read includes the cursor's instant
    assert [await queued_types(engine, r) for r in tied] == [CREATED] * 3


async def test_each_page_is_committed_on_its_own_so_a_failure_mid_poll_keeps_earlier_pages(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    poller = make_poller(engine, oz, sim, page_size=2)
    await poller.prepare()
    created = []
    for _ in range(5):
        advance(sim, 1)
        created.append(sim.create_run()["run_id"])
    real_fetch = bridge.oz.fetch_page

    async def only_the_first_page(*args: Any, **kwargs: Any) -> Any:
        if "cursor" in args[1]:
            raise ConnectionResetError("connection lost between pages")
        return await real_fetch(*args, **kwargs)

    monkeypatch.setattr(bridge.oz, "fetch_page", only_the_first_page)
    assert await poller.tick() is not None
    assert [await queued_types(engine, r) for r in created] == [CREATED] * 2 + [[]] * 3
    assert await cursor(engine) == parse_time(sim.get_run(created[1])["updated_at"])
    monkeypatch.undo()
    assert await poller.tick() is None
    assert [await queued_types(engine, r) for r in created] == [CREATED] * 5


async def test_a_page_of_runs_is_written_with_one_statement_per_table(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator
) -> None:
    poller = make_poller(engine, oz, sim, page_size=50)
    await poller.prepare()
    advance(sim, 1)
    for _ in range(50):
        advance(sim, 0.01)
        sim.create_run()
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()[:3]).upper())

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        assert await poller.tick() is None
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    writes = [s for s in statements if s.startswith(("INSERT", "UPDATE"))]
    assert writes.count("INSERT INTO RUNS") == 1
    assert not any(s.startswith("UPDATE RUNS") for s in writes)
    assert writes.count("INSERT INTO OUTBOX") == 1


async def test_after_a_burst_each_stretch_of_time_is_re_read_once_when_it_has_settled(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator
) -> None:
    poller = make_poller(engine, oz, sim, page_size=10, sweep=15, lookback=30, interval=15)
    await poller.prepare()
    for _ in range(4):  # idle ticks before the burst
        advance(sim, 15)
        assert await poller.tick() is None
    advance(sim, 1)
    for _ in range(100):  # a burst: ten pages
        advance(sim, 0.001)
        sim.create_run()
    sim.clear_requests()
    per_tick = []
    for _ in range(8):
        before = len(list_requests(sim))
        assert await poller.tick() is None
        per_tick.append(len(list_requests(sim)) - before)
        advance(sim, 15)
    # Read when it happened; one request per tick while it settles; re-read once, in the tick's one read.
    assert per_tick == [10, 1, 1, 10, 1, 1, 1, 1]


async def test_a_rate_limit_is_waited_out_as_the_api_asks_within_bounds(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator
) -> None:
    metrics = Metrics()
    poller = make_poller(engine, oz, sim, metrics=metrics, interval=1)
    await poller.prepare()
    sim.inject_fault(429, retry_after=7)
    assert await poller.tick() == 7.0  # longer than the 4-interval cap: the API knows its limits
    assert metrics.registry.get_sample_value("oz_bridge_poll_backoff_seconds") == 7.0
    assert metrics.registry.get_sample_value("oz_bridge_poll_stalls_total", {"reason": "rate_limited"}) == 1
    assert poller.status().problem == "rate_limited" and "429" in (poller.last_error or "")
    sim.inject_fault(429, retry_after=86_400)
    assert await poller.tick() == 600.0  # but a day is not waited out in one go
    assert await poller.tick() is None
    assert metrics.registry.get_sample_value("oz_bridge_poll_backoff_seconds") == 0


def test_poll_failure_backoff_doubles_and_is_capped_at_four_intervals() -> None:
    assert [failure_backoff(n, 10, jitter=lambda: 1.0) for n in (1, 2, 3, 4, 10)] == [10, 20, 40, 40, 40]
    assert failure_backoff(1, 10, jitter=lambda: 0.0) == 5
    assert backoff_for(PollProblem("api_error", "x"), 1, 10) <= 10
    assert backoff_for(PollProblem("rate_limited", "x", retry_after=0.5), 3, 10) == 0.5
    assert issubclass(RateLimitError, Exception)


async def test_page_limit_cuts_a_tick_short_and_the_next_tick_carries_on(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator
) -> None:
    metrics = Metrics()
    poller = make_poller(engine, oz, sim, metrics=metrics, page_size=2, max_pages=2)
    await poller.prepare()
    created = []
    for _ in range(7):
        advance(sim, 1)
        created.append(sim.create_run()["run_id"])
    assert await poller.tick() is None
    assert [bool(await queued_types(engine, r)) for r in created] == [True] * 4 + [False] * 3
    assert poller.status().warnings() and "page limit" in poller.status().warnings()[0]
    assert metrics.registry.get_sample_value("oz_bridge_poll_stalls_total", {"reason": "page_limit"}) == 1
    assert await poller.tick() is None
    assert [await queued_types(engine, r) for r in created] == [CREATED] * 7
    assert poller.status().warnings() == []


async def test_a_run_with_ten_thousand_artifacts_costs_memory_linear_in_its_size(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator
) -> None:
    # Artifact events are routed nowhere: the outbox's own storage of bodies is not what is measured here.
    routes = [RouteSettings(name="states", events=["run.*"], to=["t"])]
    peaks = {}
    poller = make_poller(engine, oz, sim, routes=routes)
    await poller.prepare()
    for count in (1_000, 10_000):
        advance(sim, 1)
        artifacts = [make_artifact("FILE", {"artifact_uid": f"a{count}-{i}"}, created_at=NOW) for i in range(count)]
        rid = sim.create_run(state="INPROGRESS", artifacts=artifacts)["run_id"]
        tracemalloc.start()
        try:
            assert await poller.tick() is None
            peaks[count] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert await queued_types(engine, rid) == ["run.created", "run.started"]
    assert peaks[10_000] < 15 * peaks[1_000]  # linear (10x) with slack; quadratic would be 100x
    assert peaks[10_000] < 200 * 1024 * 1024
