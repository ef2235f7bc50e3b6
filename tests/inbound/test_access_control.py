"""Acting on a run is decided from stored state: the run is the one whose recorded root was clicked
or replied to, never the run a value in the request names (design invariant 10)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bridge.logs import configure
from bridge.notifiers.slack_messages import CANCEL_ACTION_ID, GET_FILES_ACTION_ID
from tests.inbound.harness import CHANNEL, Harness, action_payload


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure("json", "info", stream=stream)
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


async def test_a_cancel_click_on_a_message_that_is_no_root_is_refused_and_logged(
    harness: Harness, logged: io.StringIO
) -> None:
    victim = await harness.thread("INPROGRESS")
    elsewhere = harness.fake.post_user_message(CHANNEL, "any message in the channel")
    payload = action_payload(elsewhere["ts"], victim.run_id, response_url=harness.fake.response_url())

    assert (await harness.post_action(payload)).status == 200
    await harness.settle()

    assert harness.sim.cancels() == []
    assert harness.sim.get_run(victim.run_id)["state"] == "INPROGRESS"
    [answer] = harness.fake.response_url_posts
    assert "isn't on the message of a run the bridge knows" in answer.body["text"]
    [refusal] = [line for line in lines(logged) if "no run's root" in str(line["event"])]
    assert refusal["claimed_run_id"] == victim.run_id and refusal["message_ts"] == elsewhere["ts"]
    assert harness.metrics.cancels.labels("refused")._value.get() == 1


async def test_a_click_on_one_runs_root_naming_another_run_acts_on_neither(
    harness: Harness, logged: io.StringIO
) -> None:
    mine = await harness.thread("INPROGRESS")
    victim = await harness.thread("INPROGRESS")
    payload = action_payload(mine.root_ts, victim.run_id, response_url=harness.fake.response_url())

    await harness.post_action(payload)
    await harness.settle()

    assert harness.sim.cancels() == []
    assert "names another run" in harness.fake.response_url_posts[0].body["text"]
    assert any("names another run" in str(line["event"]) for line in lines(logged))


async def test_a_click_in_another_channel_than_the_root_is_refused(harness: Harness) -> None:
    thread = await harness.thread("INPROGRESS")
    payload = action_payload(thread.root_ts, thread.run_id, response_url=harness.fake.response_url())
    payload["container"]["channel_id"] = payload["channel"]["id"] = "C0ELSEWHERE"

    await harness.post_action(payload)
    await harness.settle()

    assert harness.sim.cancels() == []


async def test_a_button_without_a_value_acts_on_the_run_of_the_root_it_is_on(harness: Harness) -> None:
    thread = await harness.thread("INPROGRESS")
    payload = action_payload(thread.root_ts, thread.run_id)
    del payload["actions"][0]["value"]

    await harness.post_action(payload)
    await harness.settle()

    assert [c.run_id for c in harness.sim.cancels()] == [thread.run_id]


async def test_get_files_follows_the_same_chain(harness: Harness) -> None:
    victim = await harness.thread("SUCCEEDED", attachments=[{"filename": "secret.txt", "content": "x"}])
    elsewhere = harness.fake.post_user_message(CHANNEL, "not a root")
    payload = action_payload(
        elsewhere["ts"], victim.run_id, action_id=GET_FILES_ACTION_ID, response_url=harness.fake.response_url()
    )

    await harness.post_action(payload)
    await harness.settle()

    [answer] = harness.fake.response_url_posts
    assert "secret.txt" not in answer.body["text"]
    assert harness.sim.requests(f"/api/v1/agent/runs/{victim.run_id}/handoff", "GET") == []


async def test_the_root_redrawn_after_a_cancel_is_the_stored_one(harness: Harness) -> None:
    thread = await harness.thread("INPROGRESS")
    await harness.post_action(action_payload(thread.root_ts, thread.run_id, action_id=CANCEL_ACTION_ID))
    await harness.settle()
    [update] = harness.fake.calls_to("chat.update")
    assert (update.args["channel"], update.args["ts"]) == (thread.channel, thread.root_ts)


async def test_a_response_url_that_is_not_slacks_is_never_posted_to(harness: Harness) -> None:
    thread = await harness.thread("QUEUED")
    # A live endpoint that records what it gets, on a host that is neither Slack nor the configured API.
    elsewhere = harness.fake.response_url("internal").replace("127.0.0.1", "localhost")
    payload = action_payload(thread.root_ts, thread.run_id, response_url=elsewhere)

    await harness.post_action(payload)
    await harness.settle()

    assert [c.run_id for c in harness.sim.cancels()] == [thread.run_id]
    assert harness.fake.response_url_posts == []
    [ephemeral] = harness.fake.calls_to("chat.postEphemeral")
    assert "cancelled" in ephemeral.args["text"]


async def test_a_reply_acts_on_the_run_of_the_thread_it_is_in(harness: Harness) -> None:
    first = await harness.thread()
    second = await harness.thread()
    reply = harness.reply(second, "only for the second run")
    reply["channel"] = "C0ELSEWHERE"  # the same thread ts in another channel is no bridge thread
    await harness.post_event(reply)
    await harness.post_event(harness.reply(second, "for the second run"))
    await harness.settle()

    assert harness.sim.followups(first.run_id) == []
    assert [f.message for f in harness.sim.followups(second.run_id)] == ["for the second run"]
