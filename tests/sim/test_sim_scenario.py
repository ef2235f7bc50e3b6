"""The scripted demo scenario and the scenario player."""

from __future__ import annotations

import asyncio
import math

import pytest
from oz_agent_sdk import AsyncOzAPI

from bridge.sim import DEMO_EXPECTED, DEMO_SCENARIO, Simulator, play
from bridge.sim.scenario import AwaitFollowup, CreateRun, SetState, scenario_duration


def test_demo_fits_in_three_seconds() -> None:
    assert 1.0 < scenario_duration(DEMO_SCENARIO) < 3.0


async def test_demo_outcomes(sim: Simulator, client: AsyncOzAPI) -> None:
    ids = await play(sim, DEMO_SCENARIO, speed=math.inf)
    runs = {key: await client.agent.runs.retrieve(run_id) for key, run_id in ids.items()}
    assert {k: r.state for k, r in runs.items()} == {
        "fix": "SUCCEEDED",
        "upgrade": "FAILED",
        "migrate": "SUCCEEDED",
        "plan": "SUCCEEDED",
        "refactor": "CANCELLED",
        "audit": "ERROR",
    }
    assert [a.artifact_type for a in runs["fix"].artifacts or []] == ["SCREENSHOT", "PULL_REQUEST"]
    assert [a.artifact_type for a in runs["plan"].artifacts or []] == ["PLAN", "FILE"]
    assert runs["upgrade"].status_message is not None
    assert runs["upgrade"].status_message.error_code == "environment_setup_failed"
    assert runs["audit"].status_message is not None and runs["audit"].status_message.retryable is True
    assert [(f.run_id, f.previous_state) for f in sim.followups()] == [(ids["migrate"], "BLOCKED")]
    assert [c.run_id for c in sim.cancels()] == [ids["refactor"]]
    handoff = await client.agent.runs.list_handoff_attachments(ids["migrate"])
    assert [a.filename for a in handoff.attachments] == ["workspace-snapshot.tar.gz"]
    assert runs["fix"].run_time is not None and runs["fix"].started_at is not None


async def test_demo_blocked_run_resumes_before_succeeding(sim: Simulator) -> None:
    states: list[str] = []

    def watch(step: object, ids: dict[str, str] | object) -> None:
        if isinstance(ids, dict) and "migrate" in ids:
            state = sim.get_run(ids["migrate"])["state"]
            if not states or states[-1] != state:
                states.append(state)

    await play(sim, DEMO_SCENARIO, speed=math.inf, on_step=watch)
    assert states == ["QUEUED", "INPROGRESS", "BLOCKED", "INPROGRESS", "SUCCEEDED"]


def test_demo_expected_is_printable_data() -> None:
    assert len(DEMO_EXPECTED) == len(DEMO_SCENARIO)
    assert ("Migrate billing cron", "state -> BLOCKED: Waiting for approval to pause the production billing cron") in (
        DEMO_EXPECTED
    )


async def test_speed_scales_delays(sim: Simulator) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await play(sim, DEMO_SCENARIO, speed=20)
    assert loop.time() - started < scenario_duration(DEMO_SCENARIO) / 2
    with pytest.raises(ValueError):
        await play(sim, DEMO_SCENARIO, speed=0)


async def test_await_followup_prefers_someone_elses_reply(sim: Simulator) -> None:
    scenario = [
        CreateRun(key="r", delay=0, title="Needs input", prompt="p", fields={"state": "BLOCKED"}),
        AwaitFollowup(key="r", delay=0, message="fallback", timeout=5),
        SetState(key="r", delay=0, state="SUCCEEDED"),
    ]
    created = asyncio.Event()
    task = asyncio.ensure_future(play(sim, scenario, on_step=lambda step, ids: created.set()))
    await asyncio.wait_for(created.wait(), timeout=2)
    sim.submit_followup(sim.run_ids()[0], "from the bridge")
    await asyncio.wait_for(task, timeout=2)
    assert [f.message for f in sim.followups()] == ["from the bridge"]


async def test_await_followup_falls_back_after_timeout(sim: Simulator) -> None:
    scenario = [
        CreateRun(key="r", delay=0, title="Needs input", prompt="p", fields={"state": "BLOCKED"}),
        AwaitFollowup(key="r", delay=0, message="fallback", timeout=0.05),
    ]
    await play(sim, scenario)
    assert [f.message for f in sim.followups()] == ["fallback"]
    assert sim.get_run(sim.run_ids()[0])["state"] == "INPROGRESS"
