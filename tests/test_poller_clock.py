"""Time as the poller sees it: the API's own clock (its Date header), never the machine's.

Every comparison with an API timestamp (the start point, sweep windows, "what
is in the future") is made in API time, so a skewed clock on either side
changes nothing but the skew the bridge reports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import pytest
from oz_agent_sdk import AsyncOzAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.metrics import Metrics
from bridge.poller import Poller
from bridge.settings import PollSettings
from bridge.sim import SimClock, Simulator, format_ts
from tests.polling import NOW, ROUTES, queued_types, sdk_client

TEN_MINUTES = timedelta(minutes=10)


@pytest.fixture
def sim() -> Simulator:
    return Simulator(api_key="k", clock=SimClock(frozen_at=NOW))


@pytest.fixture
async def oz(sim: Simulator) -> AsyncIterator[AsyncOzAPI]:
    async with sdk_client(sim) as client:
        yield client


def skewed_poller(
    engine: AsyncEngine, oz: AsyncOzAPI, local: Callable[[], datetime], metrics: Metrics, **poll: object
) -> Poller:
    settings = PollSettings.model_validate({"interval": 1, "lookback": 30, "sweep": 10, **poll})
    return Poller(engine, oz, settings, ROUTES, metrics, clock=local)


def advance(sim: Simulator, seconds: float) -> None:
    assert isinstance(sim.clock, SimClock)
    sim.clock.advance(seconds)


@pytest.mark.parametrize("api_offset", [-TEN_MINUTES, TEN_MINUTES], ids=["api-behind", "api-ahead"])
async def test_the_start_point_is_the_apis_now_whatever_the_bridges_clock_says(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator, api_offset: timedelta
) -> None:
    before = sim.create_run()["run_id"]  # changed before the bridge started: never announced
    advance(sim, 2)
    metrics = Metrics()
    poller = skewed_poller(engine, oz, lambda: sim.now() - api_offset, metrics)
    await poller.prepare()
    advance(sim, 1)
    after = sim.create_run()["run_id"]
    assert await poller.tick() is None
    assert await queued_types(engine, after) == ["run.created", "run.queued"]
    assert await queued_types(engine, before) == []
    skew = metrics.registry.get_sample_value("oz_bridge_api_clock_skew_seconds")
    assert skew is not None and abs(skew - api_offset.total_seconds()) <= 1.5


async def test_sweeps_find_late_updates_when_the_api_is_ten_minutes_behind(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator
) -> None:
    poller = skewed_poller(engine, oz, lambda: sim.now() + TEN_MINUTES, Metrics(), sweep=10, lookback=30)
    await poller.prepare()
    advance(sim, 1)
    late = sim.create_run(state="INPROGRESS")["run_id"]
    for _ in range(3):  # several ticks, sweeps among them, so the sweep bookkeeping is in use
        assert await poller.tick() is None
        advance(sim, 10)
    stamped = format_ts(sim.now())
    sim.update_run(late, state="FAILED", updated_at=stamped, visible_after=5)
    advance(sim, 1)
    sim.create_run()  # moves the cursor past the late update's timestamp
    for _ in range(8):  # well over lookback + sweep
        assert await poller.tick() is None
        advance(sim, 10)
    assert await queued_types(engine, late) == ["run.created", "run.started", "run.failed"]


async def test_a_large_skew_is_reported_in_the_poll_status(engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator) -> None:
    poller = skewed_poller(engine, oz, lambda: sim.now() + TEN_MINUTES, Metrics())
    await poller.prepare()
    assert await poller.tick() is None
    status = poller.status()
    assert status.clock_skew is not None and round(status.clock_skew) in (-600, -601, -599)
    assert any("clock" in warning and "behind" in warning for warning in status.warnings())


async def test_a_restarted_poller_starts_from_the_stored_skew_before_any_answer(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator
) -> None:
    local = lambda: sim.now() + TEN_MINUTES  # noqa: E731
    first = skewed_poller(engine, oz, local, Metrics())
    await first.prepare()
    assert await first.tick() is None
    sim.clear_requests()
    again = skewed_poller(engine, oz, local, Metrics())
    await again.prepare()  # a restart: the start point is stored, nothing is asked
    assert sim.requests() == []
    assert abs((again.api_now() - sim.now()).total_seconds()) <= 1
