"""Retrieve, cancel, follow-ups, handoff attachments and auth through the SDK."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import oz_agent_sdk
import pytest
from oz_agent_sdk import AsyncOzAPI

from bridge.sim import SimClock, Simulator

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
ERRORS = "https://docs.warp.dev/reference/api-and-sdk/troubleshooting/errors/"


async def test_retrieve_returns_the_run_and_404s_unknown(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.create_run(run_id="r1", title="Fix the thing", prompt="please fix")
    run = await client.agent.runs.retrieve("r1")
    assert (run.run_id, run.task_id, run.state) == ("r1", "r1", "QUEUED")
    assert (run.title, run.prompt) == ("Fix the thing", "please fix")
    with pytest.raises(oz_agent_sdk.NotFoundError) as info:
        await client.agent.runs.retrieve("nope")
    assert isinstance(info.value.body, dict)
    assert info.value.body["type"] == ERRORS + "resource-not-found"
    assert info.value.body["instance"] == "/api/v1/agent/runs/nope"


@pytest.mark.parametrize("key", ["wrong", ""])
async def test_bad_api_key_is_401(sim: Simulator, make_client: Any, key: str) -> None:
    client = make_client(api_key=key)
    with pytest.raises(oz_agent_sdk.AuthenticationError) as info:
        await client.agent.runs.list()
    assert isinstance(info.value.body, dict)
    assert info.value.body["type"] == ERRORS + "authentication-required"
    assert info.value.status_code == 401


async def test_missing_authorization_header_is_401(sim_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{sim_url}/api/v1/agent/runs") as resp:
        assert resp.status == 401
        assert resp.content_type == "application/problem+json"
        body = await resp.json(content_type=None)
        assert body["status"] == 401


async def test_cancel_moves_to_cancelled_and_bumps_updated_at(
    sim: Simulator, clock: SimClock, client: AsyncOzAPI
) -> None:
    sim.create_run(run_id="r1", state="INPROGRESS")
    clock.set(T0 + timedelta(seconds=5))
    result = await client.agent.runs.cancel("r1")
    # RunCancelResponse is `str` and the SDK returns the raw body text, quotes included.
    assert result == '"CANCELLED"'
    run = await client.agent.runs.retrieve("r1")
    assert run.state == "CANCELLED"
    assert run.updated_at == T0 + timedelta(seconds=5)
    assert [(c.run_id, c.previous_state, c.status) for c in sim.cancels()] == [("r1", "INPROGRESS", 200)]


@pytest.mark.parametrize("state", ["QUEUED", "CLAIMED", "INPROGRESS"])
async def test_cancellable_states(sim: Simulator, client: AsyncOzAPI, state: str) -> None:
    sim.create_run(run_id="r1", state=state)
    await client.agent.runs.cancel("r1")
    assert sim.get_run("r1")["state"] == "CANCELLED"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"state": "SUCCEEDED"}, oz_agent_sdk.BadRequestError),
        ({"state": "FAILED"}, oz_agent_sdk.BadRequestError),
        ({"state": "ERROR"}, oz_agent_sdk.BadRequestError),
        ({"state": "CANCELLED"}, oz_agent_sdk.BadRequestError),
        ({"state": "BLOCKED"}, oz_agent_sdk.BadRequestError),
        ({"state": "PENDING"}, oz_agent_sdk.ConflictError),
        ({"state": "INPROGRESS", "is_run_type_cancellable": False}, oz_agent_sdk.UnprocessableEntityError),
        ({"state": "INPROGRESS", "source": "GITHUB_ACTION"}, oz_agent_sdk.UnprocessableEntityError),
        ({"state": "INPROGRESS", "execution_location": "LOCAL"}, oz_agent_sdk.UnprocessableEntityError),
        ({"state": "INPROGRESS", "agent_config": {"worker_host": "my-runner"}}, oz_agent_sdk.UnprocessableEntityError),
    ],
)
async def test_cancel_refusals_map_to_sdk_errors(
    sim: Simulator, client: AsyncOzAPI, fields: dict[str, Any], error: type[Exception]
) -> None:
    before = sim.create_run(run_id="r1", **fields)
    with pytest.raises(error):
        await client.agent.runs.cancel("r1")
    assert sim.get_run("r1") == before
    assert sim.cancels()[0].status in (400, 409, 422)


async def test_cancel_unknown_run_is_404(client: AsyncOzAPI) -> None:
    with pytest.raises(oz_agent_sdk.NotFoundError):
        await client.agent.runs.cancel("ghost")


async def test_followups_are_recorded_with_mode(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.create_run(run_id="r1", state="INPROGRESS")
    assert await client.agent.runs.submit_followup("r1", message="also update the docs") == {}
    await client.agent.runs.submit_followup("r1", message="draft a plan first", mode="plan")
    await client.agent.runs.submit_followup("r1", message="split it up", mode="orchestrate")
    records = [(f.run_id, f.message, f.mode) for f in sim.followups()]
    assert records == [
        ("r1", "also update the docs", "normal"),
        ("r1", "draft a plan first", "plan"),
        ("r1", "split it up", "orchestrate"),
    ]
    assert sim.requests(method="POST")[0].body == {"message": "also update the docs"}
    assert sim.get_run("r1")["state"] == "INPROGRESS"


async def test_followup_resumes_a_blocked_run(sim: Simulator, clock: SimClock, client: AsyncOzAPI) -> None:
    sim.create_run(run_id="r1", state="BLOCKED", status_message={"message": "Need approval"})
    clock.set(T0 + timedelta(seconds=3))
    await client.agent.runs.submit_followup("r1", message="approved")
    run = await client.agent.runs.retrieve("r1")
    assert run.state == "INPROGRESS"
    assert run.status_message is None
    assert run.updated_at == T0 + timedelta(seconds=3)
    assert sim.followups()[0].previous_state == "BLOCKED"


async def test_followup_transitions_are_configurable(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.followup_transitions = {"SUCCEEDED": "QUEUED"}
    sim.create_run(run_id="done", state="SUCCEEDED")
    sim.create_run(run_id="blocked", state="BLOCKED", followup_transitions={})
    await client.agent.runs.submit_followup("done", message="one more thing")
    await client.agent.runs.submit_followup("blocked", message="ok")
    assert sim.get_run("done")["state"] == "QUEUED"
    assert sim.get_run("blocked")["state"] == "BLOCKED"


@pytest.mark.parametrize(
    "body",
    [{"message": ""}, {"message": "   "}, {"message": "hi", "mode": "turbo"}],
)
async def test_invalid_followups_are_400(sim: Simulator, client: AsyncOzAPI, body: dict[str, Any]) -> None:
    sim.create_run(run_id="r1", state="INPROGRESS")
    with pytest.raises(oz_agent_sdk.BadRequestError):
        await client.agent.runs.submit_followup("r1", **body)
    assert sim.followups() == []


async def test_followup_unknown_run_is_404(client: AsyncOzAPI) -> None:
    with pytest.raises(oz_agent_sdk.NotFoundError):
        await client.agent.runs.submit_followup("ghost", message="hello?")


@pytest.mark.parametrize(
    ("status", "error"), [(409, oz_agent_sdk.ConflictError), (422, oz_agent_sdk.UnprocessableEntityError)]
)
async def test_followup_refusal_knob(sim: Simulator, client: AsyncOzAPI, status: int, error: type[Exception]) -> None:
    reject = {"status": status, "error_code": "operation_not_supported", "detail": "run is archived"}
    sim.create_run(run_id="r1", state="SUCCEEDED", followup_reject=reject)
    with pytest.raises(error) as info:
        await client.agent.runs.submit_followup("r1", message="hi")
    body = info.value.body  # type: ignore[attr-defined]
    title = "The requested operation is not supported for this resource or its current state."
    assert body == {
        "type": ERRORS + "operation-not-supported",
        "title": title,
        "status": status,
        "detail": "run is archived",
        "instance": "/api/v1/agent/runs/r1/followups",
        "error": f"{title} (run is archived)",
        "retryable": False,
        "trace_id": body["trace_id"],
    }
    assert re.fullmatch(r"[0-9a-f]{32}", body["trace_id"])
    assert sim.followups() == []


@pytest.mark.parametrize(("status", "code", "retryable"), [(409, "conflict", True), (500, "internal_error", True)])
async def test_error_bodies_carry_the_documented_problem_fields(
    sim: Simulator, client: AsyncOzAPI, status: int, code: str, retryable: bool
) -> None:
    sim.inject_fault(status)
    with pytest.raises(oz_agent_sdk.APIStatusError) as info:
        await client.agent.runs.list()
    body = info.value.body
    assert isinstance(body, dict)
    assert set(body) == {"type", "title", "status", "detail", "instance", "error", "retryable", "trace_id"}
    assert (body["type"], body["status"], body["retryable"]) == (ERRORS + code.replace("_", "-"), status, retryable)


async def test_followup_without_a_message_is_accepted(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.create_run(run_id="r1", state="BLOCKED")
    assert await client.agent.runs.submit_followup("r1") == {}
    assert await client.agent.runs.submit_followup("r1", mode="plan") == {}
    assert [(f.message, f.mode) for f in sim.followups("r1")] == [(None, "normal"), (None, "plan")]


async def test_handoff_attachments_only_after_the_run_ended(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.create_run(run_id="r1", state="INPROGRESS", attachments=[{"filename": "snap.tar.gz", "content": "bytes!"}])
    assert (await client.agent.runs.list_handoff_attachments("r1")).attachments == []
    sim.update_run("r1", state="SUCCEEDED")
    first = (await client.agent.runs.list_handoff_attachments("r1")).attachments
    second = (await client.agent.runs.list_handoff_attachments("r1")).attachments
    assert [(a.filename, a.mime_type) for a in first] == [("snap.tar.gz", "application/gzip")]
    assert first[0].attachment_id == second[0].attachment_id
    assert first[0].download_url != second[0].download_url  # freshly minted each time
    async with aiohttp.ClientSession() as http:
        async with http.get(first[0].download_url) as resp:
            assert resp.status == 200
            assert await resp.read() == b"bytes!"
        async with http.get(first[0].download_url.replace("sig=", "sig=0")) as resp:
            assert resp.status == 403


async def test_handoff_attachments_empty_without_files_and_404_unknown(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.create_run(run_id="r1", state="FAILED")
    assert (await client.agent.runs.list_handoff_attachments("r1")).attachments == []
    with pytest.raises(oz_agent_sdk.NotFoundError):
        await client.agent.runs.list_handoff_attachments("ghost")


async def test_expired_download_link_is_403(sim: Simulator, clock: SimClock, client: AsyncOzAPI) -> None:
    sim.create_run(run_id="r1", state="SUCCEEDED", attachments=[{"filename": "a.txt", "mime_type": "text/plain"}])
    url = (await client.agent.runs.list_handoff_attachments("r1")).attachments[0].download_url
    clock.advance(3600)
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 403


async def test_redirect_endpoints_are_public_and_404_unknown_ids(sim_url: str, make_client: Any) -> None:
    anonymous = make_client(api_key="not-the-key")  # the SDK sends no credentials to these two anyway
    for call in (anonymous.agent.sessions.check_redirect, anonymous.agent.conversations.check_redirect):
        with pytest.raises(oz_agent_sdk.NotFoundError) as info:
            await call("00000000-0000-0000-0000-000000000000")
        assert isinstance(info.value.body, dict) and info.value.body["type"] == ERRORS + "resource-not-found"
    url = f"{sim_url}/api/v1/agent/sessions/unknown/redirect"
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 404  # never 401: there is nothing to authenticate


async def test_session_and_conversation_redirects_follow_the_run(sim: Simulator, make_client: Any) -> None:
    client = make_client(api_key="anything")
    sim.create_run(run_id="r1", state="INPROGRESS", session_id="s-1", conversation_id="c-1")
    assert (await client.agent.sessions.check_redirect("s-1")).conversation_id is None  # still live: no redirect
    assert (await client.agent.conversations.check_redirect("c-1")).session_id == "s-1"
    sim.update_run("r1", state="SUCCEEDED")
    assert (await client.agent.sessions.check_redirect("s-1")).conversation_id == "c-1"
    assert (await client.agent.conversations.check_redirect("c-1")).session_id is None
