"""The /_sim/ control surface over HTTP, and `python -m bridge.sim` as a subprocess."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import oz_agent_sdk
import pytest
import pytest_asyncio
from oz_agent_sdk import AsyncOzAPI, DefaultAioHttpClient

from bridge.sim import Simulator

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture
async def http(sim_url: str) -> AsyncIterator[Any]:
    async with aiohttp.ClientSession(base_url=sim_url) as session:
        yield session


async def _json(resp: aiohttp.ClientResponse, status: int = 200) -> Any:
    assert resp.status == status, await resp.text()
    return await resp.json(content_type=None)


async def test_create_patch_and_inspect_runs(http: aiohttp.ClientSession, client: AsyncOzAPI) -> None:
    created = await _json(await http.post("/_sim/runs", json={"title": "From a test", "state": "INPROGRESS"}), 201)
    run_id = created["run_id"]
    assert created["task_id"] == run_id
    assert created["creator"]["type"] == "user"
    assert created["is_run_type_cancellable"] is True
    assert created["artifacts"] == []

    patched = await _json(
        await http.patch(
            f"/_sim/runs/{run_id}",
            json={
                "status_message": {"message": "boom", "error_code": "internal_error"},
                "state": "ERROR",
                "add_artifact": {"artifact_type": "FILE", "data": {"filepath": "out/log.txt"}},
            },
        )
    )
    assert patched["state"] == "ERROR"
    assert patched["artifacts"][0]["data"]["filename"] == "log.txt"
    run = await client.agent.runs.retrieve(run_id)
    assert run.status_message is not None and run.status_message.error_code == "internal_error"

    inspected = await _json(await http.get(f"/_sim/runs/{run_id}"))
    assert inspected["run"] == inspected["visible"] == patched
    listed = await _json(await http.get("/_sim/runs"))
    assert [r["run_id"] for r in listed["runs"]] == [run_id]


async def test_control_errors_are_problem_bodies(http: aiohttp.ClientSession) -> None:
    body = await _json(await http.patch("/_sim/runs/ghost", json={"state": "FAILED"}), 404)
    assert body["type"].endswith("/resource-not-found")
    body = await _json(await http.post("/_sim/runs", json={"state": "DONE"}), 400)
    assert "state" in body["detail"]
    await _json(await http.post("/_sim/runs", data=b"{nope"), 400)
    await _json(await http.post("/_sim/faults", json={"status": 200}), 400)


async def test_late_visible_update_via_http(http: aiohttp.ClientSession, client: AsyncOzAPI) -> None:
    await http.post("/_sim/runs", json={"run_id": "r1", "state": "INPROGRESS"})
    past = "2025-03-01T11:59:55Z"
    await _json(await http.patch("/_sim/runs/r1", json={"state": "FAILED", "updated_at": past, "hidden": True}))
    assert (await client.agent.runs.retrieve("r1")).state == "INPROGRESS"
    await _json(await http.post("/_sim/runs/r1/reveal"))
    run = await client.agent.runs.retrieve("r1")
    assert run.state == "FAILED"
    assert run.updated_at.isoformat() == "2025-03-01T11:59:55+00:00"


async def test_logs_and_reset(http: aiohttp.ClientSession, client: AsyncOzAPI, sim: Simulator) -> None:
    await http.post("/_sim/runs", json={"run_id": "r1", "state": "BLOCKED"})
    await http.post("/_sim/runs", json={"run_id": "r2", "state": "INPROGRESS"})
    await client.agent.runs.submit_followup("r1", message="go", mode="plan")
    await client.agent.runs.cancel("r2")
    await client.agent.runs.list(state=["FAILED", "BLOCKED"], metadata={"k": "v"})

    followups = (await _json(await http.get("/_sim/followups")))["followups"]
    assert [(f["run_id"], f["message"], f["mode"], f["previous_state"]) for f in followups] == [
        ("r1", "go", "plan", "BLOCKED")
    ]
    cancels = (await _json(await http.get("/_sim/cancels?run_id=r2")))["cancels"]
    assert [(c["run_id"], c["status"]) for c in cancels] == [("r2", 200)]
    requests = (await _json(await http.get("/_sim/requests?method=GET")))["requests"]
    assert requests[-1]["query"] == {"state": ["FAILED", "BLOCKED"], "metadata[k]": ["v"]}
    assert "authorization" not in requests[-1]["headers"]
    await _json(await http.delete("/_sim/requests"))
    assert (await _json(await http.get("/_sim/requests")))["requests"] == []

    await _json(await http.post("/_sim/reset"))
    assert sim.run_ids() == [] and sim.followups() == [] and sim.cancels() == []


async def test_faults_via_http(http: aiohttp.ClientSession, client: AsyncOzAPI) -> None:
    added = await _json(await http.post("/_sim/faults", json=[{"status": 503, "count": 2}, {"malformed": True}]), 201)
    assert [f["status"] for f in added["faults"]] == [503, None]
    for _ in range(2):
        with pytest.raises(oz_agent_sdk.InternalServerError):
            await client.agent.runs.list()
    assert len((await _json(await http.get("/_sim/faults")))["faults"]) == 1
    await _json(await http.delete("/_sim/faults"))
    await client.agent.runs.list()


async def test_clock_control(http: aiohttp.ClientSession) -> None:
    frozen = await _json(await http.post("/_sim/clock", json={"freeze": True, "set": "2026-01-01T00:00:00Z"}))
    assert frozen == {"now": "2026-01-01T00:00:00Z", "frozen": True}
    advanced = await _json(await http.post("/_sim/clock", json={"advance": 1.5}))
    assert advanced["now"] == "2026-01-01T00:00:01.5Z"
    a = await _json(await http.post("/_sim/runs", json={}), 201)
    b = await _json(await http.post("/_sim/runs", json={}), 201)
    assert a["updated_at"] == b["updated_at"] == "2026-01-01T00:00:01.5Z"  # forced tie
    assert (await _json(await http.post("/_sim/clock", json={"freeze": False})))["frozen"] is False


async def test_config_via_http(http: aiohttp.ClientSession, client: AsyncOzAPI) -> None:
    config = await _json(await http.post("/_sim/config", json={"followup_transitions": {"FAILED": "QUEUED"}}))
    assert config == {"followup_transitions": {"FAILED": "QUEUED"}, "cancel_response": "CANCELLED", "factories": {}}
    config = await _json(await http.post("/_sim/config", json={"factories": {"f-1": ["agent-b", "agent-a"]}}))
    assert config["factories"] == {"f-1": ["agent-a", "agent-b"]}
    await http.post("/_sim/runs", json={"run_id": "r1", "state": "FAILED"})
    await client.agent.runs.submit_followup("r1", message="try again")
    assert (await client.agent.runs.retrieve("r1")).state == "QUEUED"


async def test_scenario_via_http(http: aiohttp.ClientSession, sim: Simulator) -> None:
    await _json(await http.post("/_sim/scenario", json={"name": "demo", "speed": 1000}), 202)
    for _ in range(100):
        if len(sim.run_ids()) == 6 and all(
            sim.get_run(r)["state"] in ("SUCCEEDED", "FAILED", "ERROR", "CANCELLED") for r in sim.run_ids()
        ):
            break
        await asyncio.sleep(0.02)
    assert len(sim.followups()) == 1
    await _json(await http.post("/_sim/scenario", json={"name": "nope"}), 404)


async def test_api_unknown_route_gets_problem_json(sim_url: str) -> None:
    headers = {"Authorization": "Bearer test-key"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sim_url}/api/v1/agent/nothing", headers=headers) as resp:
            assert resp.status == 404
            assert (await resp.json(content_type=None))["status"] == 404
        async with http.delete(f"{sim_url}/api/v1/agent/runs", headers=headers) as resp:
            assert resp.status == 405


async def test_module_entry_point_serves_the_api() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "bridge.sim", "--port", "0", "--api-key", "sub-key"),
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
        assert line.startswith("OZ_SIM_URL=http://127.0.0.1:")
        url = line.strip().split("=", 1)[1]
        async with aiohttp.ClientSession() as http:
            await _json(await http.post(f"{url}/_sim/runs", json={"run_id": "r1"}), 201)
        client = AsyncOzAPI(
            api_key="sub-key", base_url=f"{url}/api/v1", http_client=DefaultAioHttpClient(), max_retries=0
        )
        async with client:
            assert [r.run_id for r in (await client.agent.runs.list()).runs] == ["r1"]
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=10)
