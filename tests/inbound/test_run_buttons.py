"""Retry, Approve plan, Mute and Unmute: resolved from the stored message, exactly once per click."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bridge.notifiers.slack_messages import MUTE_ACTION_ID, RETRY_ACTION_ID, UNMUTE_ACTION_ID
from bridge.notifiers.slack_plans import APPROVE_PLAN_ACTION_ID
from bridge.sim.creation import fail_run
from bridge.store import runs as run_store
from bridge.store import slack_placements, slack_plans, slack_threads
from bridge.store.slack_plans import PlanMessage
from tests.inbound.harness import CHANNEL, HUMAN, Harness, HarnessFactory, Thread, action_payload

APPROVAL = "Approved: go ahead with the plan."


async def told(harness: Harness, **run: Any) -> Thread:
    """A run with its root in Slack, and the snapshot the poller would have stored."""
    thread = await harness.thread(**run)
    async with harness.engine.begin() as conn:
        await run_store.save_snapshot(conn, harness.sim.get_run(thread.run_id), datetime.now(UTC))
    return thread


async def failed(harness: Harness, retryable: bool | None = True) -> Thread:
    thread = await told(harness, state="INPROGRESS", prompt="Fix checkout", agent_config={"name": "fixer"})
    fail_run(harness.sim, thread.run_id, retryable=retryable)
    async with harness.engine.begin() as conn:
        await run_store.save_snapshot(conn, harness.sim.get_run(thread.run_id), datetime.now(UTC))
    return thread


async def click(harness: Harness, thread: Thread, action_id: str, **extra: Any) -> None:
    payload = action_payload(thread.root_ts, thread.run_id, action_id=action_id, **extra)
    assert (await harness.post_action(payload)).status == 200


def told_clicker(harness: Harness) -> list[str]:
    return [str(c.args["text"]) for c in harness.fake.calls_to("chat.postEphemeral")]


async def test_retry_starts_a_linked_run_told_in_the_same_thread(harness: Harness) -> None:
    thread = await failed(harness)
    await click(harness, thread, RETRY_ACTION_ID)
    await harness.settle()

    [created] = harness.sim.run_creation.records
    assert created.body["prompt"] == "Fix checkout" and created.body["config"] == {"name": "fixer"}
    assert created.body["metadata"] == {
        "slack_channel": CHANNEL, "slack_thread_ts": thread.root_ts, "retry_of": thread.run_id,
    }  # fmt: skip
    [told_them] = told_clicker(harness)
    assert created.run_id in told_them and "this thread" in told_them
    async with harness.engine.connect() as conn:  # the thread's newest run, before its status message exists
        owner = await slack_threads.owner_of(conn, CHANNEL, thread.root_ts)
    assert owner is not None and owner.run_id == created.run_id


async def test_after_a_retry_replies_in_the_thread_go_to_the_new_run_even_if_the_thread_was_seen_before(
    harness: Harness,
) -> None:
    thread = await failed(harness)
    await harness.post_event(harness.reply(thread, "why did it fail?"))  # the thread is now known (and cached)
    await harness.settle()
    await click(harness, thread, RETRY_ACTION_ID)
    await harness.settle()
    await harness.post_event(harness.reply(thread, "this time use the staging database"))
    await harness.settle()

    [retry] = harness.sim.run_creation.records
    assert [f.message for f in harness.sim.followups(thread.run_id)] == ["why did it fail?"]
    assert [f.message for f in harness.sim.followups(retry.run_id)] == ["this time use the staging database"]


async def test_two_clicks_on_retry_and_a_slack_retry_of_one_start_one_run(harness: Harness) -> None:
    thread = await failed(harness)
    await click(harness, thread, RETRY_ACTION_ID, trigger_id="t-1")
    await click(harness, thread, RETRY_ACTION_ID, trigger_id="t-1")  # the same click again
    await click(harness, thread, RETRY_ACTION_ID, trigger_id="t-2", user="U0SOMEONE")  # someone else, at once
    await harness.settle()
    assert len(harness.sim.run_creation.records) == 1
    assert "already retried" in told_clicker(harness)[-1]


async def test_a_run_the_api_says_would_fail_again_is_not_retried(harness: Harness) -> None:
    thread = await failed(harness, retryable=False)
    await click(harness, thread, RETRY_ACTION_ID)
    await harness.settle()
    assert harness.sim.run_creation.records == []
    assert "can't be retried" in told_clicker(harness)[0]


async def test_a_retry_click_from_someone_not_allowed_is_refused(make_harness: HarnessFactory) -> None:
    harness = await make_harness(allowed_users=["U0TRUSTED1"])
    thread = await failed(harness)
    await click(harness, thread, RETRY_ACTION_ID)
    await harness.settle()
    assert harness.sim.run_creation.records == []
    assert "can't steer Oz runs" in told_clicker(harness)[0]


async def plan_message(harness: Harness, thread: Thread) -> str:
    posted = await harness.slack.chat_postMessage(channel=CHANNEL, thread_ts=thread.root_ts, text="📝 Plan")
    plan = PlanMessage(CHANNEL, str(posted["ts"]), thread.run_id, CHANNEL, "art-1", datetime.now(UTC))
    async with harness.engine.begin() as conn:
        await slack_plans.record_plan(conn, plan)
    return plan.ts


async def test_approve_plan_sends_one_follow_up_whatever_the_clicks(make_harness: HarnessFactory) -> None:
    harness = await make_harness(plan_approval=APPROVAL)
    thread = await told(harness, state="INPROGRESS")
    plan_ts = await plan_message(harness, thread)
    on_plan = Thread(thread.run_id, CHANNEL, plan_ts)

    await click(harness, on_plan, APPROVE_PLAN_ACTION_ID, trigger_id="t-a")
    await click(harness, on_plan, APPROVE_PLAN_ACTION_ID, trigger_id="t-a")  # Slack's retry of that click
    await harness.settle()
    await click(harness, on_plan, APPROVE_PLAN_ACTION_ID, trigger_id="t-b", user="U0SECOND1")
    await harness.settle()

    assert [f.message for f in harness.sim.followups(thread.run_id)] == [APPROVAL]
    first, second = told_clicker(harness)
    assert APPROVAL in first and f"already approved by <@{HUMAN}>" in second
    assert [r["name"] for r in harness.fake.message(CHANNEL, plan_ts)["reactions"]] == ["white_check_mark"]  # type: ignore[index]


async def test_approve_on_a_message_that_is_no_plan_is_refused(harness: Harness) -> None:
    thread = await told(harness, state="INPROGRESS")
    await click(harness, thread, APPROVE_PLAN_ACTION_ID)  # on the root, which is no plan
    await harness.settle()
    assert harness.sim.followups() == []
    assert "isn't on the message of a run" in told_clicker(harness)[0]


async def test_a_refused_approval_can_be_clicked_again(harness: Harness) -> None:
    thread = await told(harness, state="INPROGRESS")
    plan_ts = await plan_message(harness, thread)
    on_plan = Thread(thread.run_id, CHANNEL, plan_ts)
    harness.sim.update_run(thread.run_id, followup_reject={"status": 409, "detail": "busy"})
    await click(harness, on_plan, APPROVE_PLAN_ACTION_ID)
    await harness.settle()
    harness.sim.update_run(thread.run_id, followup_reject=None)
    await click(harness, on_plan, APPROVE_PLAN_ACTION_ID)
    await harness.settle()
    assert len(harness.sim.followups(thread.run_id)) == 1


async def placement(harness: Harness, thread: Thread) -> slack_placements.SlackPlacement:
    async with harness.engine.connect() as conn:
        found = await slack_placements.load(conn, thread.run_id, CHANNEL)
    assert found is not None
    return found


async def test_mute_and_unmute_buttons_are_stored_and_redraw_the_status_message(harness: Harness) -> None:
    thread = await told(harness, state="INPROGRESS")
    await click(harness, thread, MUTE_ACTION_ID)
    await harness.settle()
    muted = await placement(harness, thread)
    assert muted.muted and muted.muted_until is None
    assert UNMUTE_ACTION_ID in str(harness.fake.message(CHANNEL, thread.root_ts)["blocks"])  # type: ignore[index]

    await click(harness, thread, UNMUTE_ACTION_ID)
    await harness.settle()
    assert not (await placement(harness, thread)).muted
    assert MUTE_ACTION_ID in str(harness.fake.message(CHANNEL, thread.root_ts)["blocks"])  # type: ignore[index]
    assert told_clicker(harness)[0].startswith("Muted")


async def test_the_status_redrawn_after_a_cancel_keeps_its_mute_state_and_sub_runs(harness: Harness) -> None:
    thread = await told(harness, state="INPROGRESS")
    async with harness.engine.begin() as conn:
        await slack_placements.mute(conn, thread.run_id, CHANNEL, None)
        kid = slack_placements.PlannedPlacement("kid", CHANNEL, "parent", CHANNEL, thread.root_ts, False, thread.run_id)
        await slack_placements.reserve(conn, kid, claimed_by="t", event_id="e", now=datetime.now(UTC))
        await slack_placements.record_shown(conn, "kid", CHANNEL, datetime.now(UTC), "SUCCEEDED")
    await click(harness, thread, "oz_cancel_run")
    await harness.settle()
    blocks = str(harness.fake.message(CHANNEL, thread.root_ts)["blocks"])  # type: ignore[index]
    assert "Cancelled" in blocks and UNMUTE_ACTION_ID in blocks and "Sub-runs: 1 ✅" in blocks
