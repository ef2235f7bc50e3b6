"""The poller against the simulator (real SDK, real HTTP, real database), tick by tick."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from oz_agent_sdk import AsyncOzAPI
from oz_agent_sdk.pagination import AsyncRunsCursorPage
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.diff import parse_time
from bridge.metrics import Metrics
from bridge.oz import build_client
from bridge.poller import Poller, failure_backoff, sweep_from
from bridge.settings import OzSettings, PollSettings, RouteSettings
from bridge.sim import SimClock, Simulator, format_ts, running_simulator
from bridge.store import outbox
from bridge.store import runs as run_store

ROUTES = [RouteSettings(name="all", events=["*"], to=["t"])]
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def sim() -> Simulator:
    return Simulator(api_key="k", clock=SimClock(frozen_at=NOW))


@pytest.fixture
async def oz(sim: Simulator) -> AsyncIterator[AsyncOzAPI]:
    async with running_simulator(sim) as url:
        client = build_client(OzSettings(api_key="k", base_url=f"{url}/api/v1"))  # type: ignore[arg-type]
        yield client
        await client.close()


def poller(engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator, **poll: object) -> Poller:
    settings = PollSettings.model_validate({"interval": 1, "lookback": 30, "sweep": 60, **poll})
    return Poller(engine, oz, settings, ROUTES, Metrics(), clock=sim.now)


async def queued_types(engine: AsyncEngine, run_id: str) -> list[str]:
    async with engine.connect() as conn:
        return [row.event_type for row in await outbox.rows_for_run(conn, run_id)]


def list_requests(sim: Simulator) -> list[dict[str, list[str]]]:
    return [r.query for r in sim.requests("/api/v1/agent/runs") if r.path.endswith("/agent/runs")]


async def test_first_boot_start_duration_reaches_back_without_announcing_old_runs(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator
) -> None:
    old = sim.create_run(
        created_at=format_ts(NOW - timedelta(hours=30)), updated_at=format_ts(NOW - timedelta(hours=2))
    )
    ancient = sim.create_run(
        created_at=format_ts(NOW - timedelta(hours=40)), updated_at=format_ts(NOW - timedelta(hours=30))
    )
    await poller(engine, oz, sim, start="24h").poll_once()
    assert await queued_types(engine, old["run_id"]) == ["run.queued"]
    assert await queued_types(engine, ancient["run_id"]) == []


async def test_ordinary_ticks_ask_from_the_cursor_and_sweeps_from_behind_it(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator
) -> None:
    p = poller(engine, oz, sim, sweep=60, lookback=30)
    await p.prepare()  # first boot: the start point is now
    sim.clock.advance(1)  # type: ignore[attr-defined]
    run = sim.create_run()
    await p.poll_once()  # the first tick is a sweep
    sim.clock.advance(5)  # type: ignore[attr-defined]
    await p.poll_once()  # an ordinary tick
    sim.clock.advance(60)  # type: ignore[attr-defined]
    await p.poll_once()  # a sweep is due again
    asked = [parse_time(q["updated_after"][0]) for q in list_requests(sim)]
    cursor = parse_time(run["updated_at"])
    assert asked == [NOW - timedelta(seconds=30), cursor, cursor - timedelta(seconds=30)]
    assert all(q["sort_by"] == ["updated_at"] and q["sort_order"] == ["asc"] for q in list_requests(sim))
    assert await queued_types(engine, run["run_id"]) == ["run.created", "run.queued"]  # re-reads added nothing


async def test_each_page_is_committed_on_its_own_so_a_failure_mid_poll_keeps_earlier_pages(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = poller(engine, oz, sim, page_size=2)
    await p.prepare()
    created = []
    for _ in range(5):
        sim.clock.advance(1)  # type: ignore[attr-defined]
        created.append(sim.create_run()["run_id"])

    async def second_page_fails(self: object) -> object:
        raise ConnectionResetError("connection lost between pages")

    monkeypatch.setattr(AsyncRunsCursorPage, "get_next_page", second_page_fails)
    assert await p.tick() is not None
    assert [await queued_types(engine, r) for r in created[:2]] == [["run.created", "run.queued"]] * 2
    assert [await queued_types(engine, r) for r in created[2:]] == [[]] * 3
    async with engine.connect() as conn:
        state = await run_store.load_poll_state(conn)
    assert state is not None and state.cursor == parse_time(sim.get_run(created[1])["updated_at"])

    monkeypatch.undo()
    assert await p.tick() is None
    for run_id in created:
        assert await queued_types(engine, run_id) == ["run.created", "run.queued"]


async def test_sweeps_stop_re_reading_a_burst_once_it_is_older_than_twice_the_lookback(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator
) -> None:
    p = poller(engine, oz, sim, sweep=10, lookback=30)
    await p.prepare()
    sim.clock.advance(1)  # type: ignore[attr-defined]
    burst = [sim.create_run() for _ in range(3)]
    cursor = parse_time(burst[-1]["updated_at"])
    for _ in range(10):  # a quiet spell: one sweep every 10 s
        sim.clock.advance(10)  # type: ignore[attr-defined]
        await p.poll_once()
    asked = [parse_time(q["updated_after"][0]) for q in list_requests(sim)]
    assert asked[1] == cursor - timedelta(seconds=30)  # early sweeps look behind the cursor
    assert asked[-1] == cursor  # later ones have nothing left to look for
    assert len(sim.requests("/api/v1/agent/runs")) == 10


def test_sweep_window_shrinks_from_the_lookback_to_the_cursor() -> None:
    cursor = NOW
    assert sweep_from(cursor, 30, None) == NOW - timedelta(seconds=30)
    assert sweep_from(cursor, 30, NOW + timedelta(seconds=10)) == NOW - timedelta(seconds=30)
    assert sweep_from(cursor, 30, NOW + timedelta(seconds=45)) == NOW - timedelta(seconds=15)
    assert sweep_from(cursor, 30, NOW + timedelta(hours=1)) == NOW


def test_poll_failure_backoff_doubles_and_is_capped_at_four_intervals() -> None:
    assert [failure_backoff(n, 10, jitter=lambda: 1.0) for n in (1, 2, 3, 4, 10)] == [10, 20, 40, 40, 40]
    assert failure_backoff(1, 10, jitter=lambda: 0.0) == 5
