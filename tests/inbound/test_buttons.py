"""The root message's buttons: Cancel run (with its refusals, in words) and Get files."""

from __future__ import annotations

import pytest

from bridge.notifiers.slack_messages import CANCEL_ACTION_ID, GET_FILES_ACTION_ID
from tests.inbound.harness import HUMAN, Harness, HarnessFactory, action_payload


async def test_cancel_cancels_at_the_api_tells_the_clicker_and_redraws_the_root(harness: Harness) -> None:
    thread = await harness.thread("INPROGRESS")
    url = harness.fake.response_url("cancel-1")

    response = await harness.post_action(action_payload(thread.root_ts, thread.run_id, response_url=url))
    assert response.status == 200
    await harness.settle()

    assert [(c.run_id, c.status) for c in harness.sim.cancels()] == [(thread.run_id, 200)]
    [answer] = harness.fake.response_url_posts
    assert answer.body["response_type"] == "ephemeral" and "cancelled" in answer.body["text"]
    [update] = harness.fake.calls_to("chat.update")
    assert update.args["ts"] == thread.root_ts and update.args["channel"] == thread.channel
    root = harness.fake.message(thread.channel, thread.root_ts)
    assert root is not None and "Cancelled" in str(root["text"])
    assert CANCEL_ACTION_ID not in str(root["blocks"])


@pytest.mark.parametrize(
    ("run", "status", "words"),
    [
        ({"state": "BLOCKED"}, 400, "already ended"),
        ({"state": "SUCCEEDED"}, 400, "already ended"),
        ({"state": "PENDING"}, 409, "try again in a few seconds"),
        ({"state": "INPROGRESS", "is_run_type_cancellable": False}, 422, "can't be cancelled from Slack"),
    ],
)
async def test_a_refused_cancel_is_explained_to_the_clicker(
    harness: Harness, run: dict[str, object], status: int, words: str
) -> None:
    thread = await harness.thread(**run)  # type: ignore[arg-type]
    payload = action_payload(thread.root_ts, thread.run_id, response_url=harness.fake.response_url())

    await harness.post_action(payload)
    await harness.settle()

    assert [c.status for c in harness.sim.cancels()] == [status]
    [answer] = harness.fake.response_url_posts
    assert words in answer.body["text"]


async def test_without_a_response_url_the_clicker_gets_an_ephemeral_message(harness: Harness) -> None:
    thread = await harness.thread("QUEUED")
    await harness.post_action(action_payload(thread.root_ts, thread.run_id))
    await harness.settle()
    [ephemeral] = harness.fake.calls_to("chat.postEphemeral")
    assert ephemeral.args["user"] == HUMAN and ephemeral.args["channel"] == thread.channel
    assert "cancelled" in ephemeral.args["text"]


async def test_the_same_click_delivered_twice_cancels_once(harness: Harness) -> None:
    thread = await harness.thread("QUEUED")
    payload = action_payload(thread.root_ts, thread.run_id, trigger_id="trigger-same")
    await harness.post_action(payload)
    await harness.post_action(payload)
    await harness.settle()
    assert len(harness.sim.cancels()) == 1


async def test_a_user_outside_allowed_users_cannot_cancel(make_harness: HarnessFactory) -> None:
    harness = await make_harness(allowed_users=["UBOSS"])
    thread = await harness.thread("INPROGRESS")
    payload = action_payload(thread.root_ts, thread.run_id, response_url=harness.fake.response_url())

    await harness.post_action(payload)
    await harness.settle()

    assert harness.sim.cancels() == []
    [answer] = harness.fake.response_url_posts
    assert "can't steer Oz runs" in answer.body["text"]
    assert harness.fake.calls_to("chat.update") == []


async def test_get_files_answers_the_clicker_alone_with_fresh_links(harness: Harness) -> None:
    thread = await harness.thread("SUCCEEDED", attachments=[{"filename": "report.md", "content": "# done"}])
    url = harness.fake.response_url("files")

    payload = action_payload(thread.root_ts, thread.run_id, action_id=GET_FILES_ACTION_ID, response_url=url)
    await harness.post_action(payload)
    await harness.settle()

    [answer] = harness.fake.response_url_posts
    assert answer.body["response_type"] == "ephemeral"
    assert "report.md" in answer.body["text"] and "/_sim/blobs/" in answer.body["text"]
    assert harness.sim.cancels() == []


async def test_clicks_on_other_buttons_are_acknowledged_and_ignored(harness: Harness) -> None:
    thread = await harness.thread("INPROGRESS")
    response = await harness.post_action(action_payload(thread.root_ts, thread.run_id, action_id="oz_open_session"))
    await harness.settle()
    assert response.status == 200
    assert harness.sim.cancels() == []
    assert {call.method for call in harness.fake.calls} == {"chat.postMessage"}  # only the root, posted by the test


@pytest.mark.parametrize("status", [500, 429, 404])
async def test_when_the_response_url_fails_the_clicker_gets_an_ephemeral_message_at_once(
    harness: Harness, status: int
) -> None:
    thread = await harness.thread("QUEUED")
    harness.fake.fail_response_url("broken", status)
    await harness.post_action(
        action_payload(thread.root_ts, thread.run_id, response_url=harness.fake.response_url("broken"))
    )
    await harness.settle()
    assert len(harness.fake.response_url_posts) == 1
    [ephemeral] = harness.fake.calls_to("chat.postEphemeral")
    assert "cancelled" in ephemeral.args["text"]
    assert len(harness.sim.cancels()) == 1
