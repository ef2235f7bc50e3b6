"""Injected faults as the SDK experiences them (max_retries=0 unless stated)."""

from __future__ import annotations

import json
import time
from typing import Any

import oz_agent_sdk
import pytest
from oz_agent_sdk import AsyncOzAPI

from bridge.sim import Simulator


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, oz_agent_sdk.InternalServerError),
        (503, oz_agent_sdk.InternalServerError),
        (429, oz_agent_sdk.RateLimitError),
    ],
)
async def test_status_faults_raise_sdk_errors(
    sim: Simulator, client: AsyncOzAPI, status: int, error: type[oz_agent_sdk.APIStatusError]
) -> None:
    sim.create_run(run_id="r1")
    sim.inject_fault(status, count=2)
    for _ in range(2):
        with pytest.raises(error) as info:
            await client.agent.runs.list()
        assert info.value.status_code == status
        assert isinstance(info.value.body, dict) and info.value.body["status"] == status
    assert [r.run_id for r in (await client.agent.runs.list()).runs] == ["r1"]
    assert [r.status for r in sim.requests()] == [status, status, 200]


async def test_429_sends_retry_after_and_sdk_honours_it(sim: Simulator, make_client: Any) -> None:
    sim.create_run(run_id="r1")
    sim.inject_fault(429, retry_after=0.3)
    retrying = make_client(max_retries=1)
    started = time.monotonic()
    page = await retrying.agent.runs.list()
    assert time.monotonic() - started >= 0.3
    assert [r.run_id for r in page.runs] == ["r1"]
    assert [(r.status, r.retry_count) for r in sim.requests()] == [(429, "0"), (200, "1")]


async def test_retry_after_header_value(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.inject_fault(429, retry_after=7)
    with pytest.raises(oz_agent_sdk.RateLimitError) as info:
        await client.agent.runs.list()
    assert info.value.response.headers["retry-after"] == "7"


async def test_fault_path_prefix_and_method(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.create_run(run_id="r1", state="INPROGRESS")
    sim.inject_fault(503, path="/agent/runs/r1/cancel", method="POST")
    await client.agent.runs.list()
    await client.agent.runs.retrieve("r1")
    with pytest.raises(oz_agent_sdk.InternalServerError):
        await client.agent.runs.cancel("r1")
    assert sim.get_run("r1")["state"] == "INPROGRESS"
    assert sim.faults.pending() == []


async def test_full_path_prefix_also_matches(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.inject_fault(500, path="/api/v1/agent/runs")
    with pytest.raises(oz_agent_sdk.InternalServerError):
        await client.agent.runs.list()


async def test_malformed_non_json_body_is_not_an_api_error(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.create_run(run_id="r1")
    sim.inject_fault(malformed=True, path="/agent/runs/r1")
    # Not JSON: the SDK hands back the raw text instead of a RunItem...
    assert isinstance(await client.agent.runs.retrieve("r1"), str)
    sim.inject_fault(malformed="non_json")
    # ...and for a list it fails inside the paginator with a plain AttributeError.
    with pytest.raises(AttributeError):
        await client.agent.runs.list()


async def test_malformed_truncated_json_raises_decode_error(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.inject_fault(malformed="truncated")
    with pytest.raises(json.JSONDecodeError):
        await client.agent.runs.list()


async def test_malformed_wrong_shape_yields_an_empty_page(sim: Simulator, client: AsyncOzAPI, make_client: Any) -> None:
    sim.create_run(run_id="r1")
    sim.inject_fault(malformed="wrong_shape")
    page = await client.agent.runs.list()
    assert page.runs is None  # the non-strict SDK does not validate
    assert page.has_next_page() is False
    sim.inject_fault(malformed="wrong_shape")
    strict = make_client(_strict_response_validation=True)
    with pytest.raises(oz_agent_sdk.APIResponseValidationError):
        await strict.agent.runs.list()


async def test_latency_fault_trips_client_timeout(sim: Simulator, make_client: Any) -> None:
    sim.inject_fault(latency=0.6)
    impatient = make_client(timeout=0.2)
    with pytest.raises(oz_agent_sdk.APITimeoutError):
        await impatient.agent.runs.list()
    started = time.monotonic()
    await impatient.agent.runs.list()
    assert time.monotonic() - started < 0.5


async def test_a_held_answer_comes_after_the_effect(sim: Simulator, make_client: Any) -> None:
    sim.inject_fault(hold=0.6, path="/agent/runs", method="POST")
    impatient = make_client(timeout=0.2)
    with pytest.raises(oz_agent_sdk.APITimeoutError):
        await impatient.agent.run(prompt="do it")
    assert len(sim.run_creation.records) == 1  # created, though the caller never heard so


async def test_latency_then_status(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.inject_fault(502, latency=0.2)
    started = time.monotonic()
    with pytest.raises(oz_agent_sdk.InternalServerError):
        await client.agent.runs.list()
    assert time.monotonic() - started >= 0.2


def test_fault_validation() -> None:
    sim = Simulator()
    with pytest.raises(ValueError):
        sim.inject_fault()
    with pytest.raises(ValueError):
        sim.inject_fault(200)
    with pytest.raises(ValueError):
        sim.inject_fault(500, count=0)
    with pytest.raises(ValueError):
        sim.inject_fault(malformed="sideways")
    with pytest.raises(ValueError):
        sim.inject_fault(503, hold=1)
