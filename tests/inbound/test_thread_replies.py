"""A person's reply in a run's thread becomes exactly one follow-up to that run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.store import inbox, slack_threads
from tests.inbound.harness import CHANNEL, HUMAN, Harness, HarnessFactory, Thread


async def test_a_signed_thread_reply_becomes_one_follow_up_without_the_bot_mention(harness: Harness) -> None:
    thread = await harness.thread()
    reply = harness.reply(thread, "<@UBOT> please also add tests &amp; docs")

    response = await harness.post_event(reply)
    assert response.status == 200
    await harness.settle()

    followups = harness.sim.followups(thread.run_id)
    assert [(f.message, f.mode) for f in followups] == [("please also add tests & docs", "normal")]
    assert harness.reactions(thread, reply["ts"]) == ["eyes", "white_check_mark"]


@pytest.mark.parametrize(
    ("text", "message", "mode"),
    [
        ("/plan sketch the migration first", "sketch the migration first", "plan"),
        ("<@UBOT> /orchestrate split this across agents", "split this across agents", "orchestrate"),
        ("/planning is not a mode", "/planning is not a mode", "normal"),
    ],
)
async def test_mode_prefixes_set_the_mode_and_are_removed(harness: Harness, text: str, message: str, mode: str) -> None:
    thread = await harness.thread()
    await harness.post_event(harness.reply(thread, text))
    await harness.settle()
    assert [(f.message, f.mode) for f in harness.sim.followups(thread.run_id)] == [(message, mode)]


async def test_a_slack_retry_of_the_same_event_is_acknowledged_and_not_acted_on_twice(harness: Harness) -> None:
    thread = await harness.thread()
    reply = harness.reply(thread, "go on")

    first = await harness.post_event(reply, event_id="Ev-retried")
    await harness.settle()
    retry = await harness.post_event(reply, event_id="Ev-retried")
    await harness.settle()

    assert (first.status, retry.status) == (200, 200)
    assert len(harness.sim.followups(thread.run_id)) == 1
    assert harness.metrics.slack_inbound.labels("event_callback", "duplicate")._value.get() == 1


async def test_app_mention_and_message_for_the_same_message_act_once(harness: Harness) -> None:
    thread = await harness.thread()
    reply = harness.reply(thread, "<@UBOT> ship it")

    await harness.post_event({**reply, "type": "app_mention"})
    await harness.post_event(reply)
    await harness.settle()

    assert [f.message for f in harness.sim.followups(thread.run_id)] == ["ship it"]


@pytest.mark.parametrize(
    "change",
    [
        {"bot_id": "BOTHER", "user": "UOTHERBOT"},
        {"bot_profile": {"id": "BOTHER"}},
        {"user": "UBOT"},  # the bridge's own user id, as auth.test reports it
        {"subtype": "message_changed"},
        {"subtype": "message_deleted"},
        {"subtype": "channel_join"},
        {"subtype": "bot_message", "bot_id": "BOTHER"},
    ],
)
async def test_bots_edits_deletions_and_other_subtypes_are_ignored(harness: Harness, change: dict[str, Any]) -> None:
    thread = await harness.thread()
    response = await harness.post_event({**harness.reply(thread, "hello"), **change})
    await harness.settle()
    assert response.status == 200
    assert harness.sim.followups() == []


async def test_thread_broadcasts_and_file_shares_are_human_replies(harness: Harness) -> None:
    thread = await harness.thread()
    await harness.post_event(harness.reply(thread, "also for the channel", subtype="thread_broadcast"))
    await harness.post_event(harness.reply(thread, "see the attached log", subtype="file_share"))
    await harness.settle()
    assert [f.message for f in harness.sim.followups(thread.run_id)] == ["also for the channel", "see the attached log"]


async def test_messages_outside_bridge_threads_are_ignored(harness: Harness) -> None:
    thread = await harness.thread()
    foreign_root = harness.fake.post_user_message(thread.channel, "someone else's thread")
    foreign = harness.reply(thread, "reply elsewhere")
    foreign["thread_ts"] = foreign_root["ts"]
    top_level = harness.reply(thread, "top level")
    del top_level["thread_ts"]

    await harness.post_event(foreign)
    await harness.post_event(top_level)
    await harness.post_event({**harness.reply(thread, "other channel"), "channel": "C0OTHERCHAN"})
    await harness.settle()

    assert harness.sim.followups() == []
    assert harness.fake.calls_to("reactions.add") == []


async def test_a_follow_up_to_an_unknown_run_is_explained_in_the_thread(harness: Harness) -> None:
    posted = await harness.slack.chat_postMessage(channel="C0TESTCHAN1", text="root of a deleted run")
    thread = await harness.record_thread("run-that-is-gone", str(posted["ts"]))

    await harness.post_event(harness.reply(thread, "are you there?"))
    await harness.settle()

    [explanation] = harness.thread_texts(thread)
    assert "not sent to the run" in explanation and "doesn't know this run" in explanation


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (409, "can't take a follow-up right now"),
        (422, "doesn't accept follow-ups"),
        (400, "didn't accept it"),
    ],
)
async def test_a_refused_follow_up_is_explained_in_the_thread(harness: Harness, status: int, words: str) -> None:
    thread = await harness.thread(followup_reject={"status": status, "detail": "the run has ended for good"})
    reply = harness.reply(thread, "one more thing")

    await harness.post_event(reply)
    await harness.settle()

    [explanation] = harness.thread_texts(thread)
    assert words in explanation and "the run has ended for good" in explanation
    assert harness.reactions(thread, reply["ts"]) == ["eyes"]
    assert harness.sim.followups() == []


async def test_a_user_outside_allowed_users_is_told_privately_and_nothing_is_sent(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(allowed_users=["UBOSS"])
    thread = await harness.thread()

    await harness.post_event(harness.reply(thread, "cancel everything", user=HUMAN))
    await harness.post_event(harness.reply(thread, "carry on", user="UBOSS"))
    await harness.settle()

    assert [f.message for f in harness.sim.followups(thread.run_id)] == ["carry on"]
    [ephemeral] = harness.fake.calls_to("chat.postEphemeral")
    assert ephemeral.args["user"] == HUMAN and "can't steer Oz runs" in ephemeral.args["text"]


async def test_a_channel_outside_allowed_channels_is_refused(make_harness: HarnessFactory) -> None:
    harness = await make_harness(allowed_channels=["C0SOMEWHERE"])
    thread = await harness.thread()
    await harness.post_event(harness.reply(thread, "hello"))
    await harness.settle()
    assert harness.sim.followups() == []
    assert len(harness.fake.calls_to("chat.postEphemeral")) == 1


async def test_replies_in_one_thread_reach_the_run_in_the_order_written(harness: Harness) -> None:
    thread = await harness.thread()
    harness.sim.inject_fault(503, path=f"/api/v1/agent/runs/{thread.run_id}/followups")
    for text in ("first", "second", "third"):
        await harness.post_event(harness.reply(thread, text))
    await harness.settle()
    for _ in range(40):
        if len(harness.sim.followups()) == 3:
            break
        await harness.settle()
        await _sleep(0.05)
    assert [f.message for f in harness.sim.followups(thread.run_id)] == ["first", "second", "third"]


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_chatter_that_cannot_concern_the_bridge_never_reaches_the_inbox(harness: Harness) -> None:
    thread = await harness.thread()
    foreign_root = harness.fake.post_user_message(thread.channel, "someone else's thread")
    noise: list[dict[str, Any]] = []
    for n in range(20):
        top_level = harness.reply(thread, f"chatter {n}")
        del top_level["thread_ts"]
        noise += [
            top_level,
            {**harness.reply(thread, f"elsewhere {n}"), "thread_ts": foreign_root["ts"]},
            {**harness.reply(thread, f"beep {n}"), "bot_id": "BOTHER"},
            {**harness.reply(thread, f"edit {n}"), "subtype": "message_changed"},
        ]
    for event in noise:
        assert (await harness.post_event(event)).status == 200

    async with harness.engine.connect() as conn:
        assert await inbox.all_rows(conn) == []
    ignored = {
        reason: harness.metrics.slack_ignored.labels(reason)._value.get()
        for reason in ("not_in_a_thread", "foreign_thread", "bot", "subtype")
    }
    assert ignored == {"not_in_a_thread": 20, "foreign_thread": 20, "bot": 20, "subtype": 20}


async def test_a_reply_while_its_root_is_still_being_recorded_is_kept_and_sent_once_recorded(
    harness: Harness,
) -> None:
    run_id = harness.sim.create_run(state="INPROGRESS")["run_id"]
    posted = await harness.slack.chat_postMessage(channel=CHANNEL, text="root, its record not yet saved")
    async with harness.engine.begin() as conn:
        await slack_threads.reserve(
            conn, run_id, CHANNEL, channel_id=CHANNEL, claimed_by="peer", event_id="root", now=datetime.now(UTC)
        )
    thread = Thread(run_id, CHANNEL, str(posted["ts"]))

    assert (await harness.post_event(harness.reply(thread, "quick reply"))).status == 200
    await harness.settle()
    assert harness.sim.followups() == []  # waiting for the record, not thrown away
    async with harness.engine.begin() as conn:
        await slack_threads.record_root(
            conn, run_id, CHANNEL, channel_id=CHANNEL, ts=thread.root_ts, shown_updated_at=None
        )
    for _ in range(60):
        await harness.settle()
        if harness.sim.followups():
            break
        await _sleep(0.05)
    assert [f.message for f in harness.sim.followups(run_id)] == ["quick reply"]
