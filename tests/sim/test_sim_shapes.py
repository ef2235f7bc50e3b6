"""Every payload the simulator serves must fit the SDK's models field for field."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pydantic
import pytest
from oz_agent_sdk import AsyncOzAPI
from oz_agent_sdk.types.agent import RunItem, RunListHandoffAttachmentsResponse

from bridge.sim import Simulator
from bridge.sim.scenario import DEMO_SCENARIO, play

ARTIFACT_TYPES = ["PLAN", "PULL_REQUEST", "SCREENSHOT", "FILE", "EXTERNAL_REFERENCE"]


def assert_no_extras(model: Any, where: str = "RunItem") -> None:
    """The SDK models accept unknown keys, so check there are none at any depth."""
    if isinstance(model, pydantic.BaseModel):
        assert not model.model_extra, f"{where} has unknown fields {sorted(model.model_extra or {})}"
        for name in type(model).model_fields:
            assert_no_extras(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list):
        for i, item in enumerate(model):
            assert_no_extras(item, f"{where}[{i}]")
    elif isinstance(model, dict):
        for key, item in model.items():
            assert_no_extras(item, f"{where}[{key}]")


def strict_run(raw: dict[str, Any]) -> RunItem:
    run = RunItem.model_validate_json(json.dumps(raw), strict=True)
    assert_no_extras(run)
    return run


async def _get(sim_url: str, path: str) -> Any:
    headers = {"Authorization": "Bearer test-key"}
    async with aiohttp.ClientSession() as http, http.get(f"{sim_url}/api/v1{path}", headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        return await resp.json()


async def test_every_artifact_type_parses_strictly(sim: Simulator, sim_url: str) -> None:
    sim.create_run(run_id="r1", state="INPROGRESS")
    for kind in ARTIFACT_TYPES:
        sim.add_artifact("r1", kind)
    raw = await _get(sim_url, "/agent/runs/r1")
    run = strict_run(raw)
    assert [a.artifact_type for a in run.artifacts or []] == ARTIFACT_TYPES
    listed = await _get(sim_url, "/agent/runs?artifact_type=SCREENSHOT")
    assert [strict_run(r).run_id for r in listed["runs"]] == ["r1"]
    assert set(listed) == {"runs", "page_info"}
    assert set(listed["page_info"]) == {"has_next_page", "next_cursor"}


async def test_demo_scenario_runs_parse_strictly(sim: Simulator, sim_url: str) -> None:
    await play(sim, DEMO_SCENARIO, speed=float("inf"))
    listed = await _get(sim_url, "/agent/runs?limit=100")
    runs = [strict_run(r) for r in listed["runs"]]
    assert len(runs) == 6
    for run in runs:
        for stamp in (run.created_at, run.updated_at):
            assert stamp.tzinfo is not None
    raw_stamps = [r["updated_at"] for r in listed["runs"]]
    assert all(s.endswith("Z") for s in raw_stamps)


async def test_strict_sdk_client_accepts_everything(sim: Simulator, make_client: Any) -> None:
    await play(sim, DEMO_SCENARIO, speed=float("inf"))
    strict: AsyncOzAPI = make_client(_strict_response_validation=True)
    page = await strict.agent.runs.list(limit=100)
    assert len(page.runs) == 6
    for run in page.runs:
        assert (await strict.agent.runs.retrieve(run.run_id)).run_id == run.run_id
        handoff = await strict.agent.runs.list_handoff_attachments(run.run_id)
        assert_no_extras(RunListHandoffAttachmentsResponse.model_validate(handoff.model_dump()))


def test_timestamps_serialise_like_rfc3339nano(sim: Simulator) -> None:
    from datetime import UTC, datetime

    run = sim.create_run(created_at=datetime(2025, 1, 2, 3, 4, 5, 120000, tzinfo=UTC))
    assert run["created_at"] == "2025-01-02T03:04:05.12Z"
    run = sim.create_run(created_at="2025-01-02T04:04:05+01:00")
    assert run["created_at"] == "2025-01-02T03:04:05Z"


@pytest.mark.parametrize(
    "fields",
    [
        {"state": "DONE"},
        {"status": "FAILED"},  # typo for state
        {"source": "EMAIL"},
        {"created_at": "yesterday"},
        {"status_message": {"message": "x", "error_code": "oops"}},
        {"artifacts": [{"artifact_type": "PLAN", "created_at": "2025-01-01T00:00:00Z", "data": {}}]},
    ],
)
def test_invalid_runs_are_refused(sim: Simulator, fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        sim.create_run(**fields)
    assert sim.run_ids() == []


def test_failed_update_changes_nothing(sim: Simulator) -> None:
    before = sim.create_run(run_id="r1")
    with pytest.raises(ValueError):
        sim.update_run("r1", state="NOPE", add_artifact={"artifact_type": "PLAN"})
    assert sim.get_run("r1") == before
    with pytest.raises(ValueError):
        sim.update_run("r1", run_id="r2")
