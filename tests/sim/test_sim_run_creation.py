"""POST /agent/runs in the simulator, through the official SDK: validation, response, inheritance, refusals."""

from __future__ import annotations

import base64

import pytest
from oz_agent_sdk import AsyncOzAPI, BadRequestError, PermissionDeniedError
from oz_agent_sdk.types import AgentRunResponse

from bridge.sim import Simulator
from bridge.sim.creation import charge, fail_run, refuse_next_runs, spawn_child

PNG = base64.b64encode(b"\x89PNG\r\n").decode()


async def test_a_run_is_created_with_what_the_request_asked(client: AsyncOzAPI, sim: Simulator) -> None:
    created = await client.agent.run(
        prompt="Fix the flaky checkout test",
        config={"name": "fixer", "environment_id": "env-1", "model_id": "m-1"},
        metadata={"slack_channel": "C0START01", "slack_thread_ts": "1700000000.000100"},
        mode="plan",
        attachments=[{"data": PNG, "file_name": "shot.png", "mime_type": "image/png"}],
    )
    assert isinstance(created, AgentRunResponse) and created.state == "QUEUED"
    run = await client.agent.runs.retrieve(created.run_id)
    assert run.prompt == "Fix the flaky checkout test"
    assert run.metadata == {"slack_channel": "C0START01", "slack_thread_ts": "1700000000.000100"}
    assert run.agent_config is not None and run.agent_config.name == "fixer"
    assert run.agent_config.api_model_id == "m-1"
    [record] = sim.run_creation.records
    assert record.run_id == created.run_id and record.body["mode"] == "plan"


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({}, "prompt is required"),
        ({"prompt": "x", "mode": "fast"}, "invalid mode"),
        ({"prompt": "x", "metadata": {f"k{i}": "v" for i in range(21)}}, "at most 20"),
        ({"prompt": "x", "metadata": {"bad key": "v"}}, "1-64 bytes"),
        ({"prompt": "x", "metadata": {"k" * 65: "v"}}, "1-64 bytes"),
        ({"prompt": "x", "metadata": {"k": "é" * 129}}, "longer than 256 bytes"),
        ({"prompt": "x", "metadata": {"k": "a\x00b"}}, "NUL"),
        ({"prompt": "x", "attachments": [{"data": PNG, "file_name": "a.pdf", "mime_type": "application/pdf"}]}, ""),
        ({"prompt": "x", "attachments": [{"data": PNG, "file_name": "a", "mime_type": "image/png"}] * 6}, "at most 5"),
        ({"prompt": "x", "parent_run_id": "nope"}, "parent run nope"),
        ({"prompt": "x", "config": {"nmae": "typo"}}, "unknown config"),
    ],
)
async def test_invalid_requests_are_refused_with_400(
    client: AsyncOzAPI, body: dict[str, object], complaint: str
) -> None:
    with pytest.raises(BadRequestError) as caught:
        await client.post("/agent/runs", body=body, cast_to=AgentRunResponse)
    assert caught.value.status_code == 400
    assert complaint in str(caught.value.body)


async def test_a_skill_alone_needs_no_prompt(client: AsyncOzAPI) -> None:
    created = await client.agent.run(skill="acme/widgets:triage")
    assert created.run_id


async def test_children_inherit_the_parents_metadata_own_keys_winning(client: AsyncOzAPI, sim: Simulator) -> None:
    parent = sim.create_run(metadata={"slack_channel": "C0START01", "slack_thread_ts": "1.2", "team": "a"})
    created = await client.agent.run(prompt="sub-task", parent_run_id=parent["run_id"], metadata={"team": "b"})
    child = await client.agent.runs.retrieve(created.run_id)
    assert child.parent_run_id == parent["run_id"]
    assert child.metadata == {"slack_channel": "C0START01", "slack_thread_ts": "1.2", "team": "b"}
    spawned = spawn_child(sim, parent["run_id"], prompt="another")
    assert spawned["metadata"]["slack_thread_ts"] == "1.2" and spawned["source"] == "ORCHESTRATION"


async def test_refusals_use_the_problem_format_and_error_codes(client: AsyncOzAPI, sim: Simulator) -> None:
    refuse_next_runs(sim, 402, "insufficient_credits", "Your team has no credits left")
    with pytest.raises(Exception) as caught:
        await client.agent.run(prompt="x")
    assert getattr(caught.value, "status_code", None) == 402
    body = getattr(caught.value, "body", {})
    assert body["type"].endswith("/insufficient-credits") and body["detail"] == "Your team has no credits left"
    sim.run_creation.on_behalf_of_allowed = False
    with pytest.raises(PermissionDeniedError):
        await client.agent.run(prompt="x", on_behalf_of="ada@example.com")
    assert sim.run_ids() == []


async def test_on_behalf_of_makes_that_person_the_creator(client: AsyncOzAPI) -> None:
    created = await client.agent.run(prompt="x", on_behalf_of="ada@example.com")
    run = await client.agent.runs.retrieve(created.run_id)
    assert run.creator is not None and run.creator.email == "ada@example.com"


async def test_runs_are_found_by_metadata_with_the_sdk_filter(client: AsyncOzAPI, sim: Simulator) -> None:
    sim.create_run(metadata={"slack_channel": "C0START01", "slack_thread_ts": "1.2"})
    sim.create_run(metadata={"slack_channel": "C0START01", "slack_thread_ts": "9.9"})
    page = await client.agent.runs.list(metadata={"slack_channel": "C0START01", "slack_thread_ts": "1.2"})
    assert [r.metadata for r in page.runs] == [{"slack_channel": "C0START01", "slack_thread_ts": "1.2"}]


async def test_knobs_fail_runs_retryably_and_set_costs(client: AsyncOzAPI, sim: Simulator) -> None:
    rid = sim.create_run(state="INPROGRESS")["run_id"]
    charge(sim, rid, inference_usd=0.25, compute_usd=0.05)
    fail_run(sim, rid, retryable=True, error_code="resource_unavailable")
    run = await client.agent.runs.retrieve(rid)
    assert run.state == "ERROR" and run.status_message is not None and run.status_message.retryable is True
    assert run.request_usage is not None and run.request_usage.inference_cost_usd == 0.25
    other = sim.create_run(state="INPROGRESS")["run_id"]
    fail_run(sim, other, retryable=False, error_code="content_policy_violation")
    assert (await client.agent.runs.retrieve(other)).state == "FAILED"
