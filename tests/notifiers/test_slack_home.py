"""Where runs are told in Slack: started threads, parents' threads, DMs, mute; the notifier against the fake
Slack over HTTP, a migrated SQLite database and, for artifacts, the Oz simulator through the SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from oz_agent_sdk import AsyncOzAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.events import Event, event_id, rfc3339
from bridge.metrics import Metrics
from bridge.notifiers.slack import SlackContext
from bridge.notifiers.slack_messages import MUTE_ACTION_ID, RETRY_ACTION_ID, UNMUTE_ACTION_ID, root_metadata
from bridge.notifiers.slack_places import thread_run_target
from bridge.notifiers.slack_plans import APPROVE_PLAN_ACTION_ID
from bridge.oz import build_client
from bridge.settings import OzSettings, SlackSettings, SlackTarget
from bridge.sim import Simulator
from bridge.sim.artifact_api import add_plan, add_screenshot
from bridge.store import runs as run_store
from bridge.store import slack_placements, slack_plans
from bridge.store.slack_placements import CREATOR_PLACE, THREAD_PLACE
from tests.fakes.slack_api import FakeSlack

TOKEN = "xoxb-home-secret"
CHANNEL = "C0ALERTS01"
START = "C0START001"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN) as server:
        yield server


@pytest.fixture
async def oz(sim_url: str, sim_api_key: str) -> AsyncIterator[AsyncOzAPI]:
    client = build_client(OzSettings(api_key=SecretStr(sim_api_key), base_url=f"{sim_url}/api/v1"))
    yield client
    await client.close()


@pytest.fixture
async def context(fake: FakeSlack, engine: AsyncEngine, oz: AsyncOzAPI) -> AsyncIterator[SlackContext]:
    ctx = make_context(fake, engine, oz)
    yield ctx
    await ctx.close()


def make_context(fake: FakeSlack, engine: AsyncEngine, oz: AsyncOzAPI | None = None, **slack: Any) -> SlackContext:
    settings = SlackSettings(bot_token=SecretStr(TOKEN), api_url=fake.api_url, **slack)
    return SlackContext(settings, engine, Metrics(), oz)


def run_of(run_id: str, state: str, minute: int, **extra: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "task_id": run_id,
        "title": f"Title of {run_id}",
        "prompt": "Make checkout reliable",
        "state": state,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": f"2026-01-01T00:{minute:02d}:00Z",
        "artifacts": [],
        **extra,
    }


def event(kind: str, run: dict[str, Any], artifact: dict[str, Any] | None = None) -> Event:
    detected = rfc3339(datetime.now(UTC))
    return Event(event_id(run["run_id"], kind, run["updated_at"]), kind, run["run_id"], detected, run, None, artifact)


async def remember(engine: AsyncEngine, run: dict[str, Any]) -> None:
    """The poller's snapshot of ``run``, which a child's redraw of its parent reads."""
    async with engine.begin() as conn:
        await run_store.save_snapshot(conn, run, seen_at=datetime.now(UTC))


async def started_thread(fake: FakeSlack) -> str:
    """A person's message in the start channel, whose ts a Slack-started run carries."""
    return str(fake.post_user_message(START, "@oz-bridge fix the flaky test")["ts"])


def slack_meta(thread_ts: str) -> dict[str, str]:
    return {"slack_channel": START, "slack_thread_ts": thread_ts, "slack_user": "U0HUMAN01"}


def tops(fake: FakeSlack, channel: str) -> list[dict[str, Any]]:
    """Messages in the channel itself (not replies in a thread)."""
    return [m for m in fake.messages(channel) if m.get("thread_ts", m["ts"]) == m["ts"]]


def in_thread(fake: FakeSlack, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    return [m for m in fake.messages(channel) if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts]


# ---- the thread a run was started in ---------------------------------------------------------------


async def test_a_started_run_is_told_in_its_thread_status_first_then_replies(
    fake: FakeSlack, context: SlackContext, engine: AsyncEngine
) -> None:
    ts = await started_thread(fake)
    thread = context.thread_notifier()
    queued = run_of("run-1", "QUEUED", 1, metadata=slack_meta(ts))
    assert thread_run_target().applies(event("run.queued", queued))
    assert (await thread.send(event("run.queued", queued))).status == "done"
    [status] = in_thread(fake, START, ts)
    assert status["metadata"] == root_metadata("run-1").to_dict() and "Queued" in status["text"]
    running = run_of("run-1", "INPROGRESS", 2, metadata=slack_meta(ts))
    assert (await thread.send(event("run.started", running))).status == "done"
    status_now, reply = in_thread(fake, START, ts)
    assert status_now["ts"] == status["ts"] and "In progress" in status_now["text"]  # moved in place
    assert "In progress" in reply["text"]
    assert [m["ts"] for m in tops(fake, START)] == [ts]
    async with engine.connect() as conn:
        placement = await slack_placements.thread_owner(conn, START, ts)
    assert placement is not None and placement.run_id == "run-1" and placement.status_ts == status["ts"]


async def test_a_started_thread_is_found_again_after_the_database_is_lost(
    fake: FakeSlack, context: SlackContext, tmp_path: Any
) -> None:
    from bridge.store.engine import create_engine, migrate

    ts = await started_thread(fake)
    await context.thread_notifier().send(event("run.queued", run_of("run-1", "QUEUED", 1, metadata=slack_meta(ts))))
    fresh = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    await migrate(fresh)
    later = make_context(fake, fresh)
    try:
        running = run_of("run-1", "INPROGRESS", 2, metadata=slack_meta(ts))
        assert (await later.thread_notifier().send(event("run.started", running))).status == "done"
    finally:
        await later.close()
        await fresh.dispose()
    status, reply = in_thread(fake, START, ts)
    assert "In progress" in status["text"] and "In progress" in reply["text"]
    assert len([m for m in in_thread(fake, START, ts) if m.get("metadata")]) == 1


async def test_a_thread_that_does_not_exist_is_a_permanent_error(context: SlackContext) -> None:
    meta = {"slack_channel": START, "slack_thread_ts": "1111111111.000100"}
    outcome = await context.thread_notifier().send(event("run.queued", run_of("run-1", "QUEUED", 1, metadata=meta)))
    assert outcome.status == "permanent" and "thread_not_found" in outcome.detail


# ---- child runs ------------------------------------------------------------------------------------------


async def test_children_are_told_in_the_parents_thread_and_summarised_on_its_status(
    fake: FakeSlack, context: SlackContext, engine: AsyncEngine
) -> None:
    alerts = context.notifier_for(SlackTarget(type="slack", channel=CHANNEL))
    parent = run_of("parent", "INPROGRESS", 1)
    await remember(engine, parent)
    await alerts.send(event("run.started", parent))
    [root] = tops(fake, CHANNEL)
    for index, state in enumerate(["INPROGRESS", "SUCCEEDED", "SUCCEEDED"]):
        child = run_of(f"child-{index}", state, 2, parent_run_id="parent")
        await remember(engine, child)
        assert (await alerts.send(event("run.started", child))).status == "done"
    statuses = [m for m in in_thread(fake, CHANNEL, root["ts"]) if m.get("metadata")]
    assert len(statuses) == 3  # each child's own status message, in the parent's thread
    assert tops(fake, CHANNEL) == [fake.message(CHANNEL, root["ts"])]
    assert "Sub-runs: 2 ✅ 1 🏃" in str(fake.message(CHANNEL, root["ts"])["blocks"])  # type: ignore[index]
    child = run_of("child-0", "FAILED", 3, parent_run_id="parent")
    await alerts.send(event("run.failed", child))
    assert "Sub-runs: 2 ✅ 1 ❌" in str(fake.message(CHANNEL, root["ts"])["blocks"])  # type: ignore[index]
    async with engine.connect() as conn:
        guest = await slack_placements.load(conn, "child-0", CHANNEL)
        owner = await slack_placements.thread_owner(conn, CHANNEL, root["ts"])
    assert guest is not None and not guest.owns_thread and guest.kind == "parent"
    assert owner is not None and owner.run_id == "parent"


async def test_a_child_waits_briefly_for_its_parents_status_message(context: SlackContext, engine: AsyncEngine) -> None:
    await remember(engine, run_of("parent", "INPROGRESS", 1))
    alerts = context.notifier_for(SlackTarget(type="slack", channel=CHANNEL))
    outcome = await alerts.send(event("run.started", run_of("kid", "INPROGRESS", 2, parent_run_id="parent")))
    assert outcome.status == "retry" and "parent" in outcome.detail


async def test_children_separate_get_their_own_root(fake: FakeSlack, engine: AsyncEngine) -> None:
    context = make_context(fake, engine, children="separate")
    try:
        alerts = context.notifier_for(SlackTarget(type="slack", channel=CHANNEL))
        await alerts.send(event("run.started", run_of("parent", "INPROGRESS", 1)))
        await alerts.send(event("run.started", run_of("kid", "INPROGRESS", 2, parent_run_id="parent")))
    finally:
        await context.close()
    assert len(tops(fake, CHANNEL)) == 2


async def parent_and_kid_in_a_started_thread(fake: FakeSlack, context: SlackContext, engine: AsyncEngine) -> str:
    """A run started from Slack ("parent") and its child ("kid"), both told in its thread; the thread's ts."""
    ts = await started_thread(fake)
    thread = context.thread_notifier()
    parent = run_of("parent", "INPROGRESS", 1, metadata=slack_meta(ts))
    await remember(engine, parent)
    await thread.send(event("run.started", parent))
    await thread.send(
        event("run.started", run_of("kid", "INPROGRESS", 2, metadata=slack_meta(ts), parent_run_id="parent"))
    )
    return ts


async def test_children_of_a_started_run_are_guests_in_its_thread(
    fake: FakeSlack, context: SlackContext, engine: AsyncEngine
) -> None:
    ts = await parent_and_kid_in_a_started_thread(fake, context, engine)
    async with engine.connect() as conn:
        owner = await slack_placements.thread_owner(conn, START, ts)
        kid = await slack_placements.load(conn, "kid", THREAD_PLACE)
    assert owner is not None and owner.run_id == "parent"
    assert kid is not None and not kid.owns_thread and kid.thread_ts == ts
    parent_status = fake.message(START, owner.status_ts or "")
    assert parent_status is not None and "Sub-runs: 1 🏃" in str(parent_status["blocks"])


async def test_muting_the_parents_thread_silences_its_guests_too(
    fake: FakeSlack, context: SlackContext, engine: AsyncEngine
) -> None:
    ts = await parent_and_kid_in_a_started_thread(fake, context, engine)
    kid = dict(metadata=slack_meta(ts), parent_run_id="parent")
    async with engine.begin() as conn:
        await slack_placements.mute(conn, "parent", THREAD_PLACE, None)
    before = len(in_thread(fake, START, ts))
    outcome = await context.thread_notifier().send(event("run.succeeded", run_of("kid", "SUCCEEDED", 3, **kid)))
    assert outcome.status == "done" and "muted" in outcome.detail
    assert len(in_thread(fake, START, ts)) == before  # the kid's status message moved, no reply
    async with engine.connect() as conn:
        kid_placement = await slack_placements.load(conn, "kid", THREAD_PLACE)
    assert kid_placement is not None
    assert "Succeeded" in str(fake.message(START, kid_placement.status_ts or ""))


async def test_a_run_started_in_a_routed_channel_gets_no_second_root_there(
    fake: FakeSlack, context: SlackContext
) -> None:
    ts = await started_thread(fake)
    run = run_of("run-1", "QUEUED", 1, metadata=slack_meta(ts))
    await context.thread_notifier().send(event("run.queued", run))
    outcome = await context.notifier_for(SlackTarget(type="slack", channel=START)).send(event("run.queued", run))
    assert outcome.status == "done" and "own Slack thread" in outcome.detail
    other = await context.notifier_for(SlackTarget(type="slack", channel=CHANNEL)).send(event("run.queued", run))
    assert other.status == "done" and len(tops(fake, CHANNEL)) == 1  # another channel: its root as usual
    assert [m["ts"] for m in tops(fake, START)] == [ts]


# ---- buttons and mute ------------------------------------------------------------------------------------


async def test_failed_retryable_runs_offer_retry_and_every_status_offers_mute(
    fake: FakeSlack, context: SlackContext
) -> None:
    alerts = context.notifier_for(SlackTarget(type="slack", channel=CHANNEL))
    failed = run_of("run-1", "ERROR", 1, status_message={"message": "boom", "retryable": True})
    await alerts.send(event("run.errored", failed))
    hopeless = run_of("run-2", "FAILED", 1, status_message={"message": "no", "retryable": False})
    await alerts.send(event("run.failed", hopeless))
    first, second = tops(fake, CHANNEL)
    assert RETRY_ACTION_ID in str(first["blocks"]) and MUTE_ACTION_ID in str(first["blocks"])
    assert RETRY_ACTION_ID not in str(second["blocks"])


async def test_a_muted_placement_gets_no_replies_but_its_status_moves(
    fake: FakeSlack, context: SlackContext, engine: AsyncEngine
) -> None:
    alerts = context.notifier_for(SlackTarget(type="slack", channel=CHANNEL))
    await alerts.send(event("run.started", run_of("run-1", "INPROGRESS", 1)))
    async with engine.begin() as conn:
        await slack_placements.mute(conn, "run-1", CHANNEL, datetime.now(UTC) + timedelta(hours=2))
    outcome = await alerts.send(event("run.succeeded", run_of("run-1", "SUCCEEDED", 2)))
    assert outcome.status == "done" and "muted" in outcome.detail
    [root] = fake.messages(CHANNEL)  # no reply in the thread
    assert "Succeeded" in root["text"] and UNMUTE_ACTION_ID in str(root["blocks"])
    async with engine.begin() as conn:
        await slack_placements.unmute(conn, "run-1", CHANNEL)
    await alerts.send(event("run.failed", run_of("run-1", "FAILED", 3)))
    assert len(fake.messages(CHANNEL)) == 2


# ---- DMs to the creator ----------------------------------------------------------------------------------


async def test_a_dm_reaches_the_creator_found_by_email(fake: FakeSlack, context: SlackContext) -> None:
    fake.add_user("U0ADA0001", "ada@example.com", name="ada")
    dm = context.notifier_for(SlackTarget(type="slack", channel="@creator"))
    creator = {"email": "Ada@Example.com", "display_name": "Ada", "uid": "u1", "type": "user"}
    await dm.send(event("run.started", run_of("run-1", "INPROGRESS", 1, creator=creator)))
    await dm.send(event("run.blocked", run_of("run-1", "BLOCKED", 2, creator=creator)))
    channel = fake.dm_channel_for("U0ADA0001")
    root, reply = fake.messages(channel)
    assert "Blocked" in root["text"] and reply["thread_ts"] == root["ts"]
    assert len(fake.calls_to("users.lookupByEmail")) == 1 and len(fake.calls_to("conversations.open")) == 1


async def test_an_unknown_creator_is_looked_up_once_and_skipped(
    fake: FakeSlack, context: SlackContext, engine: AsyncEngine
) -> None:
    dm = context.notifier_for(SlackTarget(type="slack", channel="@creator"))
    creator = {"email": "ghost@example.com", "uid": "u2"}
    for minute, state in enumerate(["QUEUED", "INPROGRESS", "FAILED"], start=1):
        outcome = await dm.send(event(f"run.{state.lower()}", run_of("run-1", state, minute, creator=creator)))
        assert outcome.status == "done" and "no Slack account" in outcome.detail
    assert len(fake.calls_to("users.lookupByEmail")) == 1
    assert context.metrics.slack_unknown_creators._value.get() == 1
    async with engine.connect() as conn:
        assert await slack_placements.load(conn, "run-1", CREATOR_PLACE) is None


# ---- plans and screenshots --------------------------------------------------------------------------------


def artifact_event(sim: Simulator, run_id: str, artifact: dict[str, Any]) -> Event:
    run = sim.get_run(run_id)
    kind = "artifact." + artifact["artifact_type"].lower()
    return Event(event_id(run_id, kind, str(artifact["data"])), kind, run_id, run["updated_at"], run, None, artifact)


async def test_a_plan_is_posted_in_the_thread_with_an_approve_button(
    fake: FakeSlack, context: SlackContext, sim: Simulator, engine: AsyncEngine
) -> None:
    alerts = context.notifier_for(SlackTarget(type="slack", channel=CHANNEL))
    rid = sim.create_run(state="INPROGRESS")["run_id"]
    await alerts.send(event("run.started", sim.get_run(rid)))
    plan = add_plan(sim, rid, "# Steps\n\n1. **Reproduce** it\n2. Fix `checkout.py`", {"title": "Fix checkout"})
    assert (await alerts.send(artifact_event(sim, rid, plan))).status == "done"
    [root] = tops(fake, CHANNEL)
    [posted] = in_thread(fake, CHANNEL, root["ts"])
    blocks = str(posted["blocks"])
    assert "*Steps*" in blocks and "1. *Reproduce* it" in blocks and "`checkout.py`" in blocks
    assert APPROVE_PLAN_ACTION_ID in blocks and "Fix checkout" in posted["text"]
    # The Approve plan click names this message; the store says whose plan it is.
    async with engine.connect() as conn:
        known = await slack_plans.plan_by_message(conn, CHANNEL, posted["ts"])
    assert known is not None and (known.run_id, known.place) == (rid, CHANNEL)
    assert known.artifact_uid == plan["data"]["artifact_uid"]


async def test_a_plan_that_cannot_be_fetched_is_mentioned_and_a_flaky_api_is_retried(
    fake: FakeSlack, context: SlackContext, sim: Simulator
) -> None:
    alerts = context.notifier_for(SlackTarget(type="slack", channel=CHANNEL))
    rid = sim.create_run(state="INPROGRESS")["run_id"]
    await alerts.send(event("run.started", sim.get_run(rid)))
    plan = add_plan(sim, rid, "# Steps")
    sim.inject_fault(503, path="/agent/artifacts/")
    assert (await alerts.send(artifact_event(sim, rid, plan))).status == "retry"
    sim.inject_fault(404, path="/agent/artifacts/")
    assert (await alerts.send(artifact_event(sim, rid, plan))).status == "done"
    [root] = tops(fake, CHANNEL)
    [reply] = in_thread(fake, CHANNEL, root["ts"])
    assert "Plan" in reply["text"] and APPROVE_PLAN_ACTION_ID not in str(reply["blocks"])


async def test_a_screenshot_is_uploaded_into_the_thread(fake: FakeSlack, context: SlackContext, sim: Simulator) -> None:
    alerts = context.notifier_for(SlackTarget(type="slack", channel=CHANNEL))
    rid = sim.create_run(state="INPROGRESS")["run_id"]
    await alerts.send(event("run.started", sim.get_run(rid)))
    shot = add_screenshot(sim, rid, b"\x89PNG-screenshot-bytes", description="The fixed page")
    assert (await alerts.send(artifact_event(sim, rid, shot))).status == "done"
    [root] = tops(fake, CHANNEL)
    [shared] = fake.shared_files(CHANNEL)
    assert shared["thread_ts"] == root["ts"] and "The fixed page" in shared["text"]
    assert fake.uploaded(shared["files"][0]["id"]) == b"\x89PNG-screenshot-bytes"
    assert context.metrics.slack_uploads.labels("uploaded")._value.get() == 1


async def test_a_screenshot_slack_refuses_is_linked_instead(
    fake: FakeSlack, context: SlackContext, sim: Simulator
) -> None:
    alerts = context.notifier_for(SlackTarget(type="slack", channel=CHANNEL))
    rid = sim.create_run(state="INPROGRESS")["run_id"]
    await alerts.send(event("run.started", sim.get_run(rid)))
    shot = add_screenshot(sim, rid, description="The fixed page")
    fake.fail_next("files.getUploadURLExternal", "missing_scope")
    assert (await alerts.send(artifact_event(sim, rid, shot))).status == "done"
    fake.fail_next_uploads(403)
    assert (await alerts.send(artifact_event(sim, rid, shot))).status == "done"
    [root] = tops(fake, CHANNEL)
    links = in_thread(fake, CHANNEL, root["ts"])
    assert len(links) == 2 and all("/_sim/artifact-blobs/" in str(m["blocks"]) for m in links)
    assert fake.shared_files(CHANNEL) == []
    fake.fail_next("files.getUploadURLExternal", "internal_error", status=500)
    assert (await alerts.send(artifact_event(sim, rid, shot))).status == "retry"


async def test_redraw_shows_the_mute_state_everywhere_the_run_is_told(
    fake: FakeSlack, context: SlackContext, engine: AsyncEngine
) -> None:
    run = run_of("run-1", "INPROGRESS", 1)
    await context.notifier_for(SlackTarget(type="slack", channel=CHANNEL)).send(event("run.started", run))
    async with engine.begin() as conn:
        await slack_placements.mute(conn, "run-1", CHANNEL, None)
    await context.redraw(run)
    [root] = tops(fake, CHANNEL)
    assert UNMUTE_ACTION_ID in str(root["blocks"]) and MUTE_ACTION_ID not in str(root["blocks"])
