"""The /_sim/ knobs for children, failures, costs, plans, screenshots and refusals, over HTTP."""

from __future__ import annotations

import base64

import aiohttp
from oz_agent_sdk import AsyncOzAPI
from oz_agent_sdk.types.agent_get_artifact_response import PlanArtifactResponse, ScreenshotArtifactResponse

from bridge.sim import Simulator


async def test_knobs_drive_the_run_like_the_in_process_functions(
    sim_url: str, sim: Simulator, client: AsyncOzAPI
) -> None:
    parent = sim.create_run(state="INPROGRESS", metadata={"slack_channel": "C0START01", "slack_thread_ts": "1.2"})
    rid = parent["run_id"]
    async with aiohttp.ClientSession(base_url=sim_url) as http:
        async with http.post(f"/_sim/runs/{rid}/children", json={"title": "Sub-task"}) as response:
            assert response.status == 201
            child = await response.json()
        async with http.post(f"/_sim/runs/{rid}/plans", json={"content": "# Do it"}) as response:
            plan = await response.json()
        shot_bytes = base64.b64encode(b"\x89PNG-knob").decode()
        async with http.post(f"/_sim/runs/{rid}/screenshots", json={"content_base64": shot_bytes}) as response:
            shot = await response.json()
        async with http.post(f"/_sim/runs/{rid}/usage", json={"inference_usd": 1.5}) as response:
            assert response.status == 200
        async with http.post(f"/_sim/runs/{rid}/fail", json={"retryable": False}) as response:
            assert (await response.json())["status_message"]["retryable"] is False
        refusal = {"status": 402, "error_code": "insufficient_credits", "detail": "no credits"}
        async with http.post("/_sim/run-refusals", json=refusal) as response:
            assert response.status == 201
        async with http.post("/_sim/runs/nope/fail", json={}) as response:
            assert response.status == 404
    assert child["parent_run_id"] == rid and child["metadata"]["slack_thread_ts"] == "1.2"
    fetched_plan = await client.agent.get_artifact(plan["data"]["artifact_uid"])
    assert isinstance(fetched_plan, PlanArtifactResponse) and fetched_plan.data.content == "# Do it"
    fetched_shot = await client.agent.get_artifact(shot["data"]["artifact_uid"])
    assert isinstance(fetched_shot, ScreenshotArtifactResponse)
    run = await client.agent.runs.retrieve(rid)
    assert run.state == "ERROR" and run.request_usage is not None and run.request_usage.inference_cost_usd == 1.5
    assert len(sim.run_creation.refusals) == 1
