"""``/mute``, ``/mute 2h`` and ``/unmute`` in a run's thread, and replies in a DM thread."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.inbound.mutes import Mute, Unmute, UnreadableMute, thread_command_of
from bridge.notifiers.slack_messages import UNMUTE_ACTION_ID
from bridge.store import runs as run_store
from bridge.store import slack_placements
from bridge.store.slack_placements import CREATOR_PLACE, PlannedPlacement
from tests.inbound.harness import CHANNEL, HUMAN, Harness, HarnessFactory, Thread


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("/mute", Mute(None)),
        ("/mute 2h", Mute(timedelta(hours=2))),
        ("/mute  90s ", Mute(timedelta(seconds=90))),
        ("/mute 1d", Mute(timedelta(days=1))),
        ("/unmute", Unmute()),
        ("/mute forever", UnreadableMute("forever")),
        ("/mute 0", UnreadableMute("0")),
        ("/mute 400d", UnreadableMute("400d")),
        ("/unmute the logs please", None),  # a message to the agent
        ("/muted", None),
        ("please /mute", None),
        ("", None),
    ],
)
def test_thread_commands_are_read_like_durations_elsewhere(text: str, command: object) -> None:
    assert thread_command_of(text) == command


async def placement(harness: Harness, thread: Thread) -> slack_placements.SlackPlacement:
    async with harness.engine.connect() as conn:
        found = await slack_placements.load(conn, thread.run_id, CHANNEL)
    assert found is not None
    return found


async def test_mute_for_a_while_is_stored_acknowledged_and_never_sent_to_the_agent(harness: Harness) -> None:
    thread = await harness.thread()
    async with harness.engine.begin() as conn:
        await run_store.save_snapshot(conn, harness.sim.get_run(thread.run_id), datetime.now(UTC))
    reply = harness.reply(thread, "<@UBOT> /mute 2h")
    before = datetime.now(UTC)
    await harness.post_event(reply)
    await harness.settle()

    muted = await placement(harness, thread)
    assert muted.muted and muted.muted_until is not None
    assert before + timedelta(hours=2) <= muted.muted_until <= datetime.now(UTC) + timedelta(hours=2)
    assert harness.sim.followups() == []
    assert harness.reactions(thread, reply["ts"]) == ["mute"]
    assert UNMUTE_ACTION_ID in str(harness.fake.message(CHANNEL, thread.root_ts)["blocks"])  # type: ignore[index]

    unmute = harness.reply(thread, "/unmute")
    await harness.post_event(unmute)
    await harness.settle()
    assert not (await placement(harness, thread)).muted
    assert harness.reactions(thread, unmute["ts"]) == ["loud_sound"]
    assert harness.sim.followups() == []


async def test_an_unreadable_duration_mutes_nothing_and_says_why(harness: Harness) -> None:
    thread = await harness.thread()
    await harness.post_event(harness.reply(thread, "/mute for a bit"))
    await harness.settle()
    assert not (await placement(harness, thread)).muted
    assert harness.sim.followups() == []
    assert any("couldn't read “for a bit” as a duration" in text for text in harness.thread_texts(thread))


async def test_only_allowed_people_may_mute(make_harness: HarnessFactory) -> None:
    harness = await make_harness(allowed_users=["U0TRUSTED1"])
    thread = await harness.thread()
    await harness.post_event(harness.reply(thread, "/mute"))
    await harness.settle()
    assert not (await placement(harness, thread)).muted


async def dm_thread(harness: Harness) -> Thread:
    """A run told to its creator in a DM: the DM's status message is the thread."""
    run_id = harness.sim.create_run(state="BLOCKED")["run_id"]
    dm = harness.fake.dm_channel_for(HUMAN)
    posted = await harness.slack.chat_postMessage(channel=dm, text=f"status of {run_id}")
    planned = PlannedPlacement(run_id, CREATOR_PLACE, "dm", dm, None, owns_thread=True)
    async with harness.engine.begin() as conn:
        await slack_placements.reserve(conn, planned, claimed_by="t", event_id="e", now=datetime.now(UTC))
        await slack_placements.record_status(
            conn, run_id, CREATOR_PLACE, channel_id=dm, status_ts=str(posted["ts"]), shown_updated_at=None, state=None
        )
    return Thread(run_id, dm, str(posted["ts"]))


async def test_a_reply_in_a_dm_thread_is_a_follow_up_and_dms_are_exempt_from_allowed_channels(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(allowed_channels=[CHANNEL])
    thread = await dm_thread(harness)
    reply = harness.reply(thread, "use the staging database")
    reply["channel_type"] = "im"

    assert (await harness.post_event(reply)).status == 200
    await harness.settle()

    assert [f.message for f in harness.sim.followups(thread.run_id)] == ["use the staging database"]


async def test_allowed_users_still_applies_in_a_dm(make_harness: HarnessFactory) -> None:
    harness = await make_harness(allowed_users=["U0TRUSTED1"])
    thread = await dm_thread(harness)
    await harness.post_event({**harness.reply(thread, "go on"), "channel_type": "im"})
    await harness.settle()
    assert harness.sim.followups() == []


async def test_a_top_level_dm_is_no_reply_and_is_ignored(harness: Harness) -> None:
    dm = harness.fake.dm_channel_for(HUMAN)
    message = harness.fake.post_user_message(dm, "hello bot")
    event = {"type": "message", "channel": dm, "channel_type": "im", "user": HUMAN, "text": "hello bot",
             "ts": message["ts"]}  # fmt: skip
    await harness.post_event(event)
    await harness.settle()
    assert harness.metrics.slack_ignored.labels("not_in_a_thread")._value.get() == 1
