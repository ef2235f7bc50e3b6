"""Late-visible updates: changes that surface after newer ones, with an older updated_at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import oz_agent_sdk
import pytest
from oz_agent_sdk import AsyncOzAPI

from bridge.sim import SimClock, Simulator

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def _ids_after(client: AsyncOzAPI, when: datetime) -> list[str]:
    page = await client.agent.runs.list(sort_order="asc", updated_after=when)
    return [r.run_id for r in page.runs]


async def test_delayed_update_surfaces_with_its_past_timestamp(
    sim: Simulator, clock: SimClock, client: AsyncOzAPI
) -> None:
    sim.create_run(run_id="r1", state="INPROGRESS")
    clock.set(t(10))
    sim.create_run(run_id="r2")  # something the poller does see, moving its cursor to t(10)
    sim.update_run("r1", state="FAILED", updated_at=t(5), visible_after=3)

    assert (await client.agent.runs.retrieve("r1")).state == "INPROGRESS"
    assert await _ids_after(client, t(1)) == ["r2"]

    clock.advance(3)
    run = await client.agent.runs.retrieve("r1")
    assert (run.state, run.updated_at) == ("FAILED", t(5))
    assert await _ids_after(client, t(10)) == []  # an ordinary tick misses it
    assert await _ids_after(client, t(10 - 6)) == ["r1", "r2"]  # a lookback sweep catches it


async def test_hidden_update_until_revealed(sim: Simulator, clock: SimClock, client: AsyncOzAPI) -> None:
    sim.create_run(run_id="r1", state="INPROGRESS")
    clock.set(t(10))
    sim.update_run("r1", state="SUCCEEDED", updated_at=t(4), hidden=True)
    clock.advance(3600)
    assert (await client.agent.runs.retrieve("r1")).state == "INPROGRESS"
    assert sim.get_run("r1")["state"] == "SUCCEEDED"
    sim.reveal("r1")
    assert (await client.agent.runs.retrieve("r1")).updated_at == t(4)


async def test_later_visible_update_wins_over_pending_one(sim: Simulator, clock: SimClock, client: AsyncOzAPI) -> None:
    sim.create_run(run_id="r1", state="QUEUED")
    sim.update_run("r1", state="INPROGRESS", hidden=True)
    clock.advance(1)
    sim.update_run("r1", state="SUCCEEDED")
    assert (await client.agent.runs.retrieve("r1")).state == "SUCCEEDED"
    sim.reveal()
    assert (await client.agent.runs.retrieve("r1")).state == "SUCCEEDED"


async def test_run_created_invisible(sim: Simulator, clock: SimClock, client: AsyncOzAPI) -> None:
    sim.create_run(run_id="r1", visible_at=t(2))
    with pytest.raises(oz_agent_sdk.NotFoundError):
        await client.agent.runs.retrieve("r1")
    with pytest.raises(oz_agent_sdk.NotFoundError):
        await client.agent.runs.cancel("r1")
    assert (await client.agent.runs.list()).runs == []
    clock.set(t(2))
    assert [r.run_id for r in (await client.agent.runs.list()).runs] == ["r1"]


async def test_actions_apply_to_the_latest_truth(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.create_run(run_id="r1", state="INPROGRESS")
    sim.update_run("r1", state="BLOCKED", hidden=True)
    # The server knows it is BLOCKED even though readers still see INPROGRESS.
    with pytest.raises(oz_agent_sdk.BadRequestError):
        await client.agent.runs.cancel("r1")
