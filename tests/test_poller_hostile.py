"""The poller against answers from the Oz API that must never stop it (real SDK, real HTTP, real database).

A record the bridge cannot use is left out and counted by reason; everything
else keeps flowing, and the cursor never moves past what was processed or past
the API's own time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from oz_agent_sdk import AsyncOzAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.metrics import Metrics
from bridge.poller import Poller
from bridge.sim import SimClock, Simulator, format_ts, parse_ts
from tests.polling import (
    NOW,
    cursor,
    left_out,
    list_requests,
    make_poller,
    queued,
    queued_types,
    sdk_client,
    stored_state,
)

CREATED = ["run.created", "run.queued"]


@pytest.fixture
def sim() -> Simulator:
    return Simulator(api_key="k", clock=SimClock(frozen_at=NOW))


@pytest.fixture
async def oz(sim: Simulator) -> AsyncIterator[AsyncOzAPI]:
    async with sdk_client(sim) as client:
        yield client


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


async def started(engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator, metrics: Metrics, **poll: object) -> Poller:
    poller = make_poller(engine, oz, sim, metrics=metrics, **poll)
    await poller.prepare()  # first boot: the start point is the API's now
    advance(sim, 1)
    sim.clear_requests()
    return poller


def advance(sim: Simulator, seconds: float) -> None:
    assert isinstance(sim.clock, SimClock)
    sim.clock.advance(seconds)


@pytest.mark.parametrize("junk", [None, "not an artifact", 7, ["a", "list"]])
async def test_an_artifact_that_is_not_an_object_is_left_out_and_everything_else_flows(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator, metrics: Metrics, junk: object
) -> None:
    poller = await started(engine, oz, sim, metrics)
    bad = sim.create_run(state="INPROGRESS")["run_id"]
    sim.add_artifact(bad, "PULL_REQUEST")
    good = sim.create_run()["run_id"]
    sim.inject_fault(mutate="artifact_not_object", run_id=bad, value=junk, count=1000)
    assert await poller.tick() is None
    assert await queued_types(engine, bad) == ["run.created", "run.started", "artifact.pull_request"]
    assert await queued_types(engine, good) == CREATED
    assert left_out(metrics, "artifact_not_object") == 1
    advance(sim, 5)
    sim.update_run(bad, state="SUCCEEDED")
    assert await poller.tick() is None
    assert (await queued_types(engine, bad))[-1] == "run.succeeded"


@pytest.mark.parametrize("junk", [42, "a run", None, [1, 2], True])
async def test_a_runs_entry_that_is_not_an_object_is_left_out_and_the_page_is_processed(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator, metrics: Metrics, junk: object
) -> None:
    poller = await started(engine, oz, sim, metrics)
    good = sim.create_run()["run_id"]
    sim.inject_fault(mutate="run_not_object", value=junk)
    assert await poller.tick() is None
    assert await queued_types(engine, good) == CREATED
    assert left_out(metrics, "run_not_object") == 1


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("state", None, "invalid_state"),
        ("run_id", "", "invalid_run_id"),
        ("updated_at", "yesterday-ish", "invalid_updated_at"),
        ("artifacts", {"not": "a list"}, "artifacts_not_list"),
    ],
)
async def test_a_run_without_what_the_diff_needs_is_left_out_by_reason(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator, metrics: Metrics, field: str, value: object, reason: str
) -> None:
    poller = await started(engine, oz, sim, metrics)
    broken = sim.create_run()["run_id"]
    good = sim.create_run()["run_id"]
    sim.inject_fault(mutate="duplicate_stale", run_id=broken, patch={field: value})  # a broken copy, then the run
    assert await poller.tick() is None
    assert await queued_types(engine, good) == CREATED
    assert await queued_types(engine, broken) == CREATED  # the genuine copy still counts
    assert left_out(metrics, reason) == 1


async def test_a_run_updated_far_in_the_future_never_moves_the_cursor_and_is_not_stored(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator, metrics: Metrics
) -> None:
    poller = await started(engine, oz, sim, metrics)
    future = sim.create_run(created_at=format_ts(sim.now()), updated_at="2099-01-01T00:00:00Z")["run_id"]
    assert await poller.tick() is None
    assert await cursor(engine) <= sim.now() + timedelta(seconds=5)
    assert await stored_state(engine, future) is None
    assert left_out(metrics, "updated_at_in_future") == 1
    advance(sim, 5)
    later = sim.create_run()["run_id"]
    assert await poller.tick() is None
    assert await queued_types(engine, later) == CREATED  # later changes are still seen
    advance(sim, 5)
    sim.update_run(future, state="INPROGRESS", updated_at=format_ts(sim.now()))  # the API sets it right
    assert await poller.tick() is None
    assert await queued_types(engine, future) == ["run.created", "run.started"]


async def test_a_repeating_next_cursor_stops_paging_keeps_what_was_processed_and_shows(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator, metrics: Metrics
) -> None:
    poller = await started(engine, oz, sim, metrics, page_size=1)
    runs = []
    for _ in range(3):
        advance(sim, 1)
        runs.append(sim.create_run()["run_id"])
    sim.inject_fault(mutate="repeat_cursor", count=10_000)
    backoff = await asyncio.wait_for(poller.tick(), timeout=10)
    assert backoff is not None  # a failed poll: readiness and the backoff know
    assert poller.last_error is not None and "cursor" in poller.last_error
    assert len(list_requests(sim)) == 2  # page 1, then page 2 names page 2 again
    assert [await queued_types(engine, r) for r in runs] == [CREATED, CREATED, []]
    assert metrics.registry.get_sample_value("oz_bridge_poll_stalls_total", {"reason": "cursor_repeated"}) == 1
    sim.faults.clear()
    assert await poller.tick() is None
    assert await queued_types(engine, runs[2]) == CREATED


@pytest.mark.parametrize("stale_is_older", [True, False], ids=["older-updated_at", "same-updated_at"])
async def test_the_same_run_twice_in_a_page_stale_copy_first_keeps_the_newest(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator, metrics: Metrics, stale_is_older: bool
) -> None:
    poller = await started(engine, oz, sim, metrics)
    rid = sim.create_run(state="INPROGRESS")["run_id"]
    assert await poller.tick() is None
    advance(sim, 5)
    current = sim.update_run(rid, state="SUCCEEDED")
    patch = {"state": "INPROGRESS"} if stale_is_older else {"state": "INPROGRESS", "updated_at": current["updated_at"]}
    sim.inject_fault(mutate="duplicate_stale", run_id=rid, patch=patch)
    assert await poller.tick() is None
    assert await queued(engine, rid) == [
        ("run.created", "INPROGRESS"),
        ("run.started", "INPROGRESS"),
        ("run.succeeded", "SUCCEEDED"),
    ]
    assert await stored_state(engine, rid) == "SUCCEEDED"
    assert left_out(metrics, "duplicate_in_page") == 1


async def test_a_page_with_duplicates_of_a_new_run_tells_one_first_sighting(
    engine: AsyncEngine, oz: AsyncOzAPI, sim: Simulator, metrics: Metrics
) -> None:
    poller = await started(engine, oz, sim, metrics)
    run = sim.create_run(state="SUCCEEDED")
    rid = run["run_id"]
    just_before = format_ts(parse_ts(run["updated_at"]) - timedelta(milliseconds=1))  # after the start point
    sim.inject_fault(mutate="duplicate_stale", run_id=rid, patch={"state": "INPROGRESS", "updated_at": just_before})
    assert await poller.tick() is None
    assert await queued_types(engine, rid) == ["run.created", "run.succeeded"]  # never an invented run.started
