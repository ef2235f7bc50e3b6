"""The durable inbox: stored before the 200, acted on once, even across crashes and outages."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bridge.inbound import WorkerSettings
from bridge.logs import configure
from bridge.store import inbox
from tests.inbound.harness import FAST, Harness, HarnessFactory


async def until(condition: Callable[[], object], harness: Harness, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await harness.settle()
        await asyncio.sleep(0.02)


async def test_a_reply_stored_but_never_processed_is_acted_on_once_by_a_fresh_worker(
    make_harness: HarnessFactory,
) -> None:
    crashed = await make_harness()  # its worker never runs: as if the process died after answering 200
    thread = await crashed.thread()
    response = await crashed.post_event(crashed.reply(thread, "still there?"))
    assert response.status == 200
    assert crashed.sim.followups() == []

    restarted = await make_harness(start=True)
    await until(lambda: crashed.sim.followups(), restarted)
    await restarted.settle()
    await crashed.settle()  # the old worker, had it survived, finds nothing left to do

    assert [f.message for f in crashed.sim.followups(thread.run_id)] == ["still there?"]


async def test_rows_claimed_by_a_killed_process_are_taken_back_at_start(make_harness: HarnessFactory) -> None:
    crashed = await make_harness()
    thread = await crashed.thread()
    await crashed.post_event(crashed.reply(thread, "resume please"))
    async with crashed.engine.begin() as conn:
        claimed = await inbox.claim_due(conn, "killed-worker", datetime.now(UTC), 10, timedelta(hours=1))
    assert len(claimed) == 1

    restarted = await make_harness(start=True)  # SQLite: one replica, so every claim is stale
    await until(lambda: crashed.sim.followups(), restarted)
    assert len(crashed.sim.followups(thread.run_id)) == 1


async def test_an_outcome_already_recorded_is_told_but_never_acted_on_again(harness: Harness) -> None:
    thread = await harness.thread()
    reply = harness.reply(thread, "already sent")
    await harness.post_event(reply)
    # As if the follow-up went out and the process died before Slack was told.
    async with harness.engine.begin() as conn:
        await inbox.record_outcome(conn, harness.sent[-1], {"result": "accepted", "run_id": thread.run_id})

    await harness.settle()

    assert harness.sim.followups() == []
    assert harness.reactions(thread, reply["ts"]) == ["white_check_mark"]


async def test_a_transient_api_failure_is_retried_with_backoff(harness: Harness) -> None:
    thread = await harness.thread()
    harness.sim.inject_fault(503, count=2, path=f"/api/v1/agent/runs/{thread.run_id}/followups")

    await harness.post_event(harness.reply(thread, "eventually"))
    await until(lambda: harness.sim.followups(), harness)

    assert [f.message for f in harness.sim.followups(thread.run_id)] == ["eventually"]
    async with harness.engine.connect() as conn:
        row = await inbox.get(conn, harness.sent[-1])
    assert row is not None and row.status == inbox.DONE and row.attempts == 3


async def test_a_slack_failure_while_telling_retries_the_telling_only(harness: Harness) -> None:
    thread = await harness.thread()
    reply = harness.reply(thread, "once only")
    harness.fake.fail_next("reactions.add", "internal_error", count=2, status=500)

    await harness.post_event(reply)
    await until(lambda: "white_check_mark" in harness.reactions(thread, reply["ts"]), harness)

    assert len(harness.sim.followups(thread.run_id)) == 1


async def test_when_the_api_stays_down_the_person_is_told_and_the_row_fails(make_harness: HarnessFactory) -> None:
    harness = await make_harness(worker=WorkerSettings(first_retry=0.05, max_backoff=0.05, max_age=0.3))
    thread = await harness.thread()
    harness.sim.inject_fault(503, count=1000, path=f"/api/v1/agent/runs/{thread.run_id}/followups")

    await harness.post_event(harness.reply(thread, "hello?"))
    await until(lambda: harness.thread_texts(thread), harness)

    [explanation] = harness.thread_texts(thread)
    assert "could not be reached" in explanation and "send it again" in explanation
    async with harness.engine.connect() as conn:
        row = await inbox.get(conn, harness.sent[-1])
    assert row is not None and row.status == inbox.FAILED and row.last_error == "Oz API answered 503"


async def test_a_started_inbound_acts_without_being_prodded(make_harness: HarnessFactory) -> None:
    harness = await make_harness(worker=FAST, start=True)
    thread = await harness.thread()
    await harness.post_event(harness.reply(thread, "background"))
    for _ in range(100):
        if harness.sim.followups():
            break
        await asyncio.sleep(0.02)
    assert [f.message for f in harness.sim.followups(thread.run_id)] == ["background"]


async def test_when_the_inbox_cannot_be_written_slack_gets_503_and_its_retry_is_stored(harness: Harness) -> None:
    thread = await harness.thread()
    await harness.post_event(harness.reply(thread, "warm the directory"))
    reply = harness.reply(thread, "not lost")
    async with harness.engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE inbound_events RENAME TO inbound_events_away")
    refused = await harness.post_event(reply, event_id="Ev-unstored")
    async with harness.engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE inbound_events_away RENAME TO inbound_events")
    retried = await harness.post_event(reply, event_id="Ev-unstored")  # Slack's retry

    assert (refused.status, retried.status) == (503, 200)
    await until(lambda: len(harness.sim.followups(thread.run_id)) == 2, harness)
    assert [f.message for f in harness.sim.followups(thread.run_id)] == ["warm the directory", "not lost"]


async def test_a_retry_is_logged_with_its_time_in_rfc3339(harness: Harness) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure("json", "info", stream=stream)
    try:
        thread = await harness.thread()
        harness.sim.inject_fault(503, count=1, path=f"/api/v1/agent/runs/{thread.run_id}/followups")
        await harness.post_event(harness.reply(thread, "later"))
        await until(lambda: harness.sim.followups(), harness)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    [retry] = [json.loads(line) for line in stream.getvalue().splitlines() if "will be retried" in line]
    assert isinstance(retry["retry_at"], str)
    assert datetime.fromisoformat(retry["retry_at"]).tzinfo is not None
