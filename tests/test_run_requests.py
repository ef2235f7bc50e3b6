"""Starting and retrying runs through the SDK, against the simulator over HTTP: at most one run per request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from oz_agent_sdk import APIStatusError, AsyncOzAPI
from pydantic import SecretStr

from bridge.oz import build_client
from bridge.run_requests import RunRequest, find_existing, refusal_text, retry_request, start
from bridge.settings import OzSettings
from bridge.sim import Simulator
from bridge.sim.creation import fail_run, refuse_next_runs

SLACK = {"slack_channel": "C0START01", "slack_thread_ts": "1700000000.000100", "slack_user": "U0ADA0001"}


@pytest.fixture
async def client(sim_url: str, sim_api_key: str) -> AsyncIterator[AsyncOzAPI]:
    oz = build_client(OzSettings(api_key=SecretStr(sim_api_key), base_url=f"{sim_url}/api/v1"))
    yield oz
    await oz.close()


def request(**extra: object) -> RunRequest:
    fields: dict[str, object] = {
        "prompt": "Fix the flaky test",
        "metadata": SLACK,
        "identity": ("slack_channel", "slack_thread_ts"),
        **extra,
    }
    return RunRequest(**fields)  # type: ignore[arg-type]


async def test_a_request_starts_one_run_and_asking_again_finds_it(client: AsyncOzAPI, sim: Simulator) -> None:
    first = await start(client, request(mode="plan", config={"name": "fixer"}))
    again = await start(client, request(mode="plan", config={"name": "fixer"}))
    assert not first.already_existed and again.already_existed and again.run_id == first.run_id
    assert sim.run_ids() == [first.run_id]
    [created] = sim.run_creation.records
    assert created.body["mode"] == "plan" and created.body["metadata"] == SLACK
    assert created.body["config"] == {"name": "fixer"}
    # The look-up is the SDK's metadata filter, as the API documents it.
    [listing, *_] = sim.requests("/api/v1/agent/runs", method="GET")
    assert listing.query["metadata[slack_channel]"] == ["C0START01"]
    assert listing.query["metadata[slack_thread_ts]"] == ["1700000000.000100"]


async def test_a_run_created_before_a_crash_is_found_not_doubled(client: AsyncOzAPI, sim: Simulator) -> None:
    # The create call went through but the bridge died before recording anything.
    earlier = sim.create_run(prompt="Fix the flaky test", metadata=SLACK)
    started = await start(client, request())
    assert started.already_existed and started.run_id == earlier["run_id"]
    assert sim.run_creation.records == []


async def test_a_retry_repeats_prompt_config_and_metadata_with_retry_of(client: AsyncOzAPI, sim: Simulator) -> None:
    failed = sim.create_run(prompt="Fix it", agent_config={"name": "fixer", "model_id": "m-1"}, metadata=SLACK)
    fail_run(sim, failed["run_id"], retryable=True)
    retry = retry_request(sim.get_run(failed["run_id"]))
    started = await start(client, retry)
    twice = await start(client, retry)
    assert twice.run_id == started.run_id and len(sim.run_creation.records) == 1
    new = sim.get_run(started.run_id)
    assert new["prompt"] == "Fix it" and new["agent_config"] == {"name": "fixer", "model_id": "m-1"}
    assert new["metadata"] == {**SLACK, "retry_of": failed["run_id"]}


async def test_a_refusal_is_put_in_words(client: AsyncOzAPI, sim: Simulator) -> None:
    refuse_next_runs(sim, 402, "insufficient_credits", "No credits <left>")
    with pytest.raises(APIStatusError) as caught:
        await start(client, request())
    text = refusal_text(caught.value.status_code, caught.value.body)
    assert (
        text == "The run was not started: the team has no Oz credits left (the Oz API said: No credits &lt;left&gt;)."
    )
    assert "agent config" in refusal_text(422, {"type": "https://docs.warp.dev/errors/operation_not_supported"})


async def test_the_metadata_filter_limit_is_the_apis(client: AsyncOzAPI) -> None:
    with pytest.raises(ValueError):
        await find_existing(client, {f"k{i}": "v" for i in range(6)})


async def test_a_retry_of_a_run_told_in_a_channel_is_told_in_that_thread(client: AsyncOzAPI, sim: Simulator) -> None:
    failed = sim.create_run(prompt="Fix it", state="FAILED")
    retry = retry_request(sim.get_run(failed["run_id"]), thread=("C0ALERTS01", "1700000000.000200"))
    started = await start(client, retry)
    assert sim.get_run(started.run_id)["metadata"] == {
        "slack_channel": "C0ALERTS01",
        "slack_thread_ts": "1700000000.000200",
        "retry_of": failed["run_id"],
    }
