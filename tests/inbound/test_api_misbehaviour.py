"""Unreadable 200s from the Oz API (a proxy's error page, a cut-off body) never act twice nor wedge a row."""

from __future__ import annotations

import asyncio

import pytest

from bridge.notifiers.slack_messages import GET_FILES_ACTION_ID
from bridge.store import inbox
from tests.inbound.harness import Harness, action_payload


async def settle_until_done(harness: Harness) -> None:
    for _ in range(100):
        await harness.settle()
        async with harness.engine.connect() as conn:
            if not await inbox.all_rows(conn, [inbox.PENDING]):
                return
        await asyncio.sleep(0.02)
    raise AssertionError("rows still pending")


@pytest.mark.parametrize("malformed", ["truncated", "non_json"])
async def test_an_unreadable_2xx_to_a_follow_up_counts_as_accepted(harness: Harness, malformed: str) -> None:
    thread = await harness.thread()
    reply = harness.reply(thread, "body lost on the way back")
    harness.sim.inject_fault(malformed=malformed, path=f"/api/v1/agent/runs/{thread.run_id}/followups")

    await harness.post_event(reply)
    await settle_until_done(harness)

    # The simulator answered with garbage instead of acting, but a real server would have acted:
    # the bridge must not send the follow-up again.
    assert harness.sim.requests(f"/api/v1/agent/runs/{thread.run_id}/followups", "POST")[0].status == 200
    assert len(harness.sim.requests(f"/api/v1/agent/runs/{thread.run_id}/followups", "POST")) == 1
    assert harness.reactions(thread, reply["ts"]) == ["eyes", "white_check_mark"]


async def test_an_unreadable_file_listing_is_retried(harness: Harness) -> None:
    thread = await harness.thread("SUCCEEDED", attachments=[{"filename": "out.log", "content": "ok"}])
    harness.sim.inject_fault(malformed="non_json", path=f"/api/v1/agent/runs/{thread.run_id}/handoff")
    url = harness.fake.response_url("files")

    await harness.post_action(
        action_payload(thread.root_ts, thread.run_id, action_id=GET_FILES_ACTION_ID, response_url=url)
    )
    await settle_until_done(harness)

    [answer] = harness.fake.response_url_posts
    assert "out.log" in answer.body["text"]


async def test_an_unreadable_run_after_a_cancel_still_answers_the_clicker(harness: Harness) -> None:
    thread = await harness.thread("INPROGRESS")
    harness.sim.inject_fault(malformed="truncated", path=f"/api/v1/agent/runs/{thread.run_id}", method="GET")
    url = harness.fake.response_url("cancel")

    await harness.post_action(action_payload(thread.root_ts, thread.run_id, response_url=url))
    await settle_until_done(harness)

    assert [c.status for c in harness.sim.cancels()] == [200]
    assert "cancelled" in harness.fake.response_url_posts[0].body["text"]
    assert harness.fake.calls_to("chat.update") == []  # the next poll redraws the root
