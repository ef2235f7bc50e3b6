"""Runs started, steered and followed from Slack, end to end.

The real ``oz-bridge run`` (a subprocess) against the Oz simulator and the fake Slack over HTTP; what
a person does in Slack reaches the bridge as Slack sends it: signed events and clicks on its Request URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bridge.notifiers.slack_messages import MUTE_ACTION_ID, RETRY_ACTION_ID, UNMUTE_ACTION_ID
from bridge.notifiers.slack_plans import APPROVE_PLAN_ACTION_ID
from bridge.sim import Simulator
from bridge.sim.artifact_api import add_plan
from bridge.sim.creation import fail_run, refuse_next_runs
from bridge.sim.slack_events import SlackEvents
from tests.e2e.harness import BridgeProcess, fast_config, wait_until
from tests.fakes.slack_api import FakeSlack
from tests.inbound.harness import SIGNING_SECRET

BOT_TOKEN = "xoxb-e2e-start"
START = "C0START001"
ELSEWHERE = "C0OTHER001"
APPROVAL = "Plan approved from Slack. Go ahead."


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=BOT_TOKEN) as fake:
        yield fake


def start_config(**extra: Any) -> dict[str, Any]:
    config = fast_config({}, [])
    config["slack"] = {
        "start": {"channels": [START], "config": {"name": "fixer"}},
        "plan_approval": APPROVAL,
        **extra.pop("slack", {}),
    }
    return {**config, **extra}


async def started(
    bridges: Callable[..., BridgeProcess], slack: FakeSlack, config: dict[str, Any] | None = None
) -> tuple[BridgeProcess, SlackEvents]:
    bridge = bridges(
        config or start_config(),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_API_URL=slack.api_url,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
    )
    await bridge.start()
    return bridge, SlackEvents(slack, f"{bridge.url}/slack/events", SIGNING_SECRET)


def statuses(slack: FakeSlack, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if m.get("thread_ts") == thread_ts and m.get("metadata")]


def replies(slack: FakeSlack, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    """The bot's replies in the thread other than status messages."""
    return [
        m
        for m in slack.messages(channel)
        if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts and m.get("bot_id") and not m.get("metadata")
    ]


def status_text(slack: FakeSlack, channel: str, ts: str) -> str:
    return str(slack.message(channel, ts) or {})


async def one_status(slack: FakeSlack, channel: str, thread_ts: str) -> dict[str, Any]:
    await wait_until(lambda: len(statuses(slack, channel, thread_ts)) == 1, what="the run's status message")
    return statuses(slack, channel, thread_ts)[0]


async def test_a_mention_starts_exactly_one_run_and_its_status_message_moves_in_place_in_that_thread(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge, people = await started(bridges, slack)
    mention = await people.mention(START, "/plan make checkout reliable", user="U0ADA0001")
    assert mention.statuses == [200, 200]  # Slack sends one message as message and app_mention
    assert await people.resend(mention) == 200  # and retries the event when it thinks it went unheard
    await wait_until(lambda: len(sim.run_creation.records) == 1, what="the run")
    [created] = sim.run_creation.records
    assert created.body["prompt"] == "make checkout reliable" and created.body["mode"] == "plan"
    assert created.body["config"] == {"name": "fixer"}
    assert created.body["metadata"] == {
        "slack_channel": START,
        "slack_thread_ts": mention.ts,
        "slack_user": "U0ADA0001",
    }

    status = await one_status(slack, START, mention.ts)
    assert "Queued" in status["text"]
    sim.update_run(created.run_id, state="INPROGRESS")
    await wait_until(lambda: "In progress" in status_text(slack, START, status["ts"]), what="status moved in place")
    await wait_until(lambda: any("In progress" in r["text"] for r in replies(slack, START, mention.ts)), what="reply")
    assert await people.resend(mention) == 200  # a late retry, long after the run started
    await asyncio.sleep(0.5)
    assert await bridge.stop() == 0
    assert len(sim.run_creation.records) == 1 and len(statuses(slack, START, mention.ts)) == 1
    assert "eyes" in str(slack.message(START, mention.ts))


async def test_a_crash_right_after_the_create_call_starts_no_second_run(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge, people = await started(bridges, slack)
    sim.inject_fault(hold=5, path="/agent/runs", method="POST")  # created, but the answer never comes back
    mention = await people.mention(START, "fix the flaky test")
    await wait_until(lambda: len(sim.run_creation.records) == 1, what="the simulator to record the create")
    await bridge.kill()  # SIGKILL: nothing of the run reached the bridge's own records
    sim.faults.clear()

    await bridge.start()
    status = await one_status(slack, START, mention.ts)
    await asyncio.sleep(1.0)  # the restarted worker has long acted on the stored mention
    assert await bridge.stop() == 0
    assert len(sim.run_creation.records) == 1
    [run_id] = sim.run_ids()
    assert run_id in str(status["metadata"])


async def test_a_mention_in_a_channel_not_configured_starts_nothing_and_says_nothing(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge, people = await started(bridges, slack)
    mention = await people.mention(ELSEWHERE, "deploy to production")
    await wait_until(
        lambda: _metric(bridge, 'oz_bridge_slack_ignored_total{reason="start_not_enabled"}', 1), what="the drop"
    )
    assert await bridge.stop() == 0
    assert sim.run_creation.records == [] and sim.run_ids() == []
    assert [m for m in slack.messages(ELSEWHERE) if m.get("bot_id")] == []
    assert "reactions" not in (slack.message(ELSEWHERE, mention.ts) or {})


async def _metric(bridge: BridgeProcess, name: str, at_least: float) -> bool:
    return await bridge.metric(name) >= at_least


async def test_a_refusal_is_explained_in_the_thread(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge, people = await started(bridges, slack)
    refuse_next_runs(sim, 402, "insufficient_credits", "Your team has no credits left this month")
    mention = await people.mention(START, "fix it")
    await wait_until(lambda: bool(replies(slack, START, mention.ts)), what="the explanation")
    assert await bridge.stop() == 0
    [said] = replies(slack, START, mention.ts)
    assert "The run was not started: the team has no Oz credits left" in said["text"]
    assert sim.run_ids() == []


async def started_run(sim: Simulator, slack: FakeSlack, people: SlackEvents) -> tuple[str, str, dict[str, Any]]:
    """A mention's run, its thread (the mention's ts) and its status message."""
    mention = await people.mention(START, "fix the flaky checkout test")
    await wait_until(lambda: len(sim.run_creation.records) == 1, what="the run")
    status = await one_status(slack, START, mention.ts)
    return sim.run_creation.records[0].run_id, mention.ts, status


async def test_retry_starts_a_linked_run_told_in_the_same_thread(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge, people = await started(bridges, slack)
    run_id, thread_ts, status = await started_run(sim, slack, people)
    fail_run(sim, run_id, retryable=True)
    await wait_until(lambda: RETRY_ACTION_ID in status_text(slack, START, status["ts"]), what="the Retry button")
    click = people.click_payload(START, status["ts"], RETRY_ACTION_ID, run_id)
    assert await people.post_click(click) == 200
    assert await people.post_click(click) == 200  # Slack's retry of the same click
    await wait_until(lambda: len(sim.run_creation.records) == 2, what="the retry")
    await wait_until(lambda: len(statuses(slack, START, thread_ts)) == 2, what="the retry's status in the thread")
    await asyncio.sleep(0.5)
    assert await bridge.stop() == 0
    retry = sim.run_creation.records[1]
    assert retry.body["metadata"]["retry_of"] == run_id
    assert retry.body["metadata"]["slack_thread_ts"] == thread_ts
    assert retry.body["prompt"] == "fix the flaky checkout test"
    assert len(sim.run_creation.records) == 2


async def test_a_plan_is_posted_and_its_approval_reaches_the_run_as_one_follow_up(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge, people = await started(bridges, slack)
    run_id, thread_ts, _ = await started_run(sim, slack, people)
    sim.update_run(run_id, state="INPROGRESS")
    add_plan(sim, run_id, "# Plan\n\n1. Reproduce\n2. Fix the race", {"title": "Checkout fix"})

    def plan_messages() -> list[dict[str, Any]]:
        return [m for m in slack.messages(START) if APPROVE_PLAN_ACTION_ID in str(m.get("blocks"))]

    await wait_until(lambda: len(plan_messages()) == 1, what="the plan with its Approve button")
    [plan] = plan_messages()
    assert plan["thread_ts"] == thread_ts
    click = people.click_payload(START, plan["ts"], APPROVE_PLAN_ACTION_ID, run_id)
    assert await people.post_click(click) == 200
    assert await people.post_click(click) == 200  # Slack's retry of that click
    await wait_until(lambda: len(sim.followups(run_id)) == 1, what="the approval")
    assert await people.click(START, plan["ts"], APPROVE_PLAN_ACTION_ID, run_id, user="U0SECOND1") == 200
    await asyncio.sleep(1.0)
    assert await bridge.stop() == 0
    assert [f.message for f in sim.followups(run_id)] == [APPROVAL]


async def test_a_reply_in_a_dm_thread_becomes_a_follow_up(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    slack.add_user("U0ADA0001", "ada@example.com", name="ada")
    config = start_config(targets={"mine": {"type": "slack", "channel": "@creator"}})
    config["routes"] = [{"name": "mine", "events": ["*"], "to": ["mine"]}]
    config["slack"]["allowed_channels"] = [START]  # a DM is its creator's own: not held to this list
    bridge, people = await started(bridges, slack, config)
    ada = {"uid": "u-ada", "email": "ada@example.com", "display_name": "Ada", "type": "user"}
    run_id = sim.create_run(title="Ada's run", state="BLOCKED", creator=ada)["run_id"]
    dm = slack.dm_channel_for("U0ADA0001")
    await wait_until(lambda: any(m.get("metadata") for m in slack.messages(dm)), what="the DM")
    status = next(m for m in slack.messages(dm) if m.get("metadata"))
    await people.reply(dm, status["ts"], "use the staging database", user="U0ADA0001")
    await wait_until(lambda: len(sim.followups(run_id)) == 1, what="the follow-up from the DM")
    assert await bridge.stop() == 0
    assert sim.followups(run_id)[0].message == "use the staging database"


async def test_mute_and_unmute_by_reply_and_by_button_stop_and_resume_replies_not_the_status(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge, people = await started(bridges, slack)
    run_id, thread_ts, status = await started_run(sim, slack, people)
    await wait_until(lambda: len(replies(slack, START, thread_ts)) >= 1, what="the first reply (queued)")

    async def change(state: str, *, replied: bool) -> None:
        before = len(replies(slack, START, thread_ts))
        sim.update_run(run_id, state=state)
        await wait_until(lambda: _shows(slack, status["ts"], state), what=f"the status showing {state}")
        if replied:
            await wait_until(lambda: len(replies(slack, START, thread_ts)) == before + 1, what=f"a reply for {state}")
        else:
            await asyncio.sleep(1.0)  # a reply would have come by now
            assert len(replies(slack, START, thread_ts)) == before

    muting = await people.reply(START, thread_ts, "<@UBOT> /mute 2h")
    await wait_until(lambda: "'mute'" in str(slack.message(START, muting.ts)), what="the 🔇 reaction")
    await change("INPROGRESS", replied=False)
    await people.reply(START, thread_ts, "/unmute")
    await wait_until(lambda: MUTE_ACTION_ID in status_text(slack, START, status["ts"]), what="Mute again")
    await change("BLOCKED", replied=True)
    await people.click(START, status["ts"], MUTE_ACTION_ID, run_id)
    await wait_until(lambda: UNMUTE_ACTION_ID in status_text(slack, START, status["ts"]), what="the Unmute button")
    await change("INPROGRESS", replied=False)
    await people.click(START, status["ts"], UNMUTE_ACTION_ID, run_id)
    await wait_until(lambda: UNMUTE_ACTION_ID not in status_text(slack, START, status["ts"]), what="Mute again")
    await change("SUCCEEDED", replied=True)
    assert await bridge.stop() == 0
    assert sim.followups(run_id) == []  # the commands never reached the agent


def _shows(slack: FakeSlack, ts: str, state: str) -> bool:
    labels = {"INPROGRESS": "In progress", "BLOCKED": "Blocked", "SUCCEEDED": "Succeeded"}
    return labels[state] in status_text(slack, START, ts)


async def test_a_reminder_in_a_muted_thread_is_not_posted(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge, people = await started(bridges, slack, start_config(reminders={"blocked_every": "1s"}))
    run_id, thread_ts, status = await started_run(sim, slack, people)
    await people.click(START, status["ts"], MUTE_ACTION_ID, run_id)
    await wait_until(lambda: UNMUTE_ACTION_ID in status_text(slack, START, status["ts"]), what="muted")
    sim.update_run(run_id, state="BLOCKED", status_message={"message": "Which database?"})
    await wait_until(lambda: _shows(slack, status["ts"], "BLOCKED"), what="the status showing Blocked")

    def reminders() -> list[dict[str, Any]]:
        return [r for r in replies(slack, START, thread_ts) if "Still waiting" in r["text"]]

    await asyncio.sleep(3.0)  # three reminder intervals
    assert reminders() == []
    await people.click(START, status["ts"], UNMUTE_ACTION_ID, run_id)
    await wait_until(lambda: bool(reminders()), within=20, what="a reminder once unmuted")
    assert await bridge.stop() == 0
    assert "<@UHUMAN>" in reminders()[0]["text"]  # the person who started it, from the run's metadata


async def test_a_reply_posted_before_the_status_message_exists_is_followed_up(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge, people = await started(bridges, slack)
    slack.fail_next("chat.postMessage", "internal_error", count=10_000, status=500)  # no status message for now
    mention = await people.mention(START, "fix the flaky test")
    await wait_until(lambda: len(sim.run_creation.records) == 1, what="the run")
    run_id = sim.run_creation.records[0].run_id
    await people.reply(START, mention.ts, "also update the changelog")
    await wait_until(lambda: len(sim.followups(run_id)) == 1, what="the follow-up")
    assert statuses(slack, START, mention.ts) == []  # it came before any status message
    slack.clear_failures()
    await one_status(slack, START, mention.ts)
    assert await bridge.stop() == 0
    assert sim.followups(run_id)[0].message == "also update the changelog"
