"""Slack as the run's home, end to end: oz-bridge run (subprocess) → the simulator and the fake Slack over HTTP.

Runs started from Slack are told in their thread without any route; children in their parent's thread;
plans, screenshots and DMs; mute.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.notifiers.slack_plans import APPROVE_PLAN_ACTION_ID
from bridge.sim import Simulator
from bridge.sim.artifact_api import add_plan, add_screenshot
from bridge.sim.creation import spawn_child
from bridge.store import slack_placements
from bridge.store.engine import create_engine
from tests.e2e.harness import BridgeProcess, fast_config, wait_until
from tests.fakes.slack_api import FakeSlack

BOT_TOKEN = "xoxb-e2e-home-secret"
START = "C0START001"
ALERTS = "C0ALERTS01"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=BOT_TOKEN) as fake:
        yield fake


def bridge_with(
    bridges: Callable[..., BridgeProcess], slack: FakeSlack, targets: dict[str, Any], routes: list[dict[str, Any]]
) -> BridgeProcess:
    return bridges(fast_config(targets, routes), SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=slack.api_url)


def everything_to(target: str) -> list[dict[str, Any]]:
    return [{"name": "all", "events": ["*"], "to": [target]}]


def tops(slack: FakeSlack, channel: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if m.get("thread_ts", m["ts"]) == m["ts"]]


def in_thread(slack: FakeSlack, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts]


def statuses(slack: FakeSlack, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    return [m for m in in_thread(slack, channel, thread_ts) if m.get("metadata")]


def replies(slack: FakeSlack, thread_ts: str) -> list[dict[str, Any]]:
    return [m for m in in_thread(slack, START, thread_ts) if not m.get("metadata")]


def started_by_slack(slack: FakeSlack, sim: Simulator, **run: Any) -> tuple[str, str]:
    """A person's message in Slack and the run it started (as the inbound side will create it)."""
    ts = str(slack.post_user_message(START, "<@UBOT> make checkout reliable")["ts"])
    meta = {"slack_channel": START, "slack_thread_ts": ts, "slack_user": "U0HUMAN01"}
    rid = sim.create_run(**{"title": "Make checkout reliable", "state": "QUEUED", "metadata": meta, **run})["run_id"]
    return ts, rid


def forget_database(bridge: BridgeProcess) -> None:
    db = bridge.workdir / "bridge.db"
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        path.unlink(missing_ok=True)


async def test_a_run_started_from_slack_is_told_in_its_thread_with_no_route_even_after_losing_the_database(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge = bridge_with(bridges, slack, {}, [])
    await bridge.start()
    ts, rid = started_by_slack(slack, sim)
    await wait_until(lambda: len(statuses(slack, START, ts)) == 1, what="the status message in the thread")
    [status] = statuses(slack, START, ts)
    assert "Queued" in status["text"]
    sim.update_run(rid, state="INPROGRESS")
    await wait_until(lambda: "In progress" in str(slack.message(START, status["ts"])), what="status moved in place")
    await wait_until(lambda: any("In progress" in m["text"] for m in replies(slack, ts)), what="a reply for the change")
    _, metrics = await bridge.get("/metrics")
    assert 'oz_bridge_outbox_depth{target="@slack-thread"} 0.0' in metrics  # the built-in queue is watched too
    assert await bridge.stop() == 0

    forget_database(bridge)
    await bridge.start()
    await wait_until(lambda: _ready(bridge), what="the first poll of the new database")
    sim.update_run(rid, state="FAILED", status_message={"message": "Tests failed", "retryable": True})
    await wait_until(lambda: "Failed" in str(slack.message(START, status["ts"])), what="the same status message")
    await wait_until(lambda: any("Failed" in m["text"] for m in replies(slack, ts)), what="a reply after the loss")
    assert await bridge.stop() == 0
    assert [m["ts"] for m in statuses(slack, START, ts)] == [status["ts"]]  # never a second status message
    # Outside the thread: only the person's message and the failure's broadcast reply.
    assert [m["ts"] for m in tops(slack, START) if m.get("subtype") != "thread_broadcast"] == [ts]
    assert "oz_retry_run" in str(slack.message(START, status["ts"])["blocks"])  # type: ignore[index]


async def _ready(bridge: BridgeProcess) -> bool:
    status, _ = await bridge.get("/readyz")
    return status == 200


async def test_child_runs_are_told_in_the_parents_thread_with_its_summary_line(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge = bridge_with(bridges, slack, {"alerts": {"type": "slack", "channel": ALERTS}}, everything_to("alerts"))
    await bridge.start()
    parent = sim.create_run(title="Orchestrate the release", state="INPROGRESS")["run_id"]
    await wait_until(lambda: len(tops(slack, ALERTS)) == 1, what="the parent's root")
    [root] = tops(slack, ALERTS)
    kids = [spawn_child(sim, parent, title=f"Sub-task {i}", state="INPROGRESS")["run_id"] for i in range(3)]
    await wait_until(lambda: len(statuses(slack, ALERTS, root["ts"])) == 3, what="the children's status messages")
    sim.update_run(kids[0], state="SUCCEEDED")
    sim.update_run(kids[1], state="SUCCEEDED")

    def summary() -> str:
        return str((slack.message(ALERTS, root["ts"]) or {}).get("blocks"))

    await wait_until(lambda: "Sub-runs: 2 ✅ 1 🏃" in summary(), what="the parent's summary line")
    assert await bridge.stop() == 0
    assert len(tops(slack, ALERTS)) == 1  # no child got a root of its own


async def test_a_plan_and_a_screenshot_reach_the_thread(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge = bridge_with(bridges, slack, {}, [])
    await bridge.start()
    ts, rid = started_by_slack(slack, sim, state="INPROGRESS")
    await wait_until(lambda: len(statuses(slack, START, ts)) == 1, what="the status message")
    add_plan(sim, rid, "# Plan\n\n1. **Reproduce** the flake\n2. Fix the race", {"title": "Checkout fix"})
    await wait_until(
        lambda: any(APPROVE_PLAN_ACTION_ID in str(m.get("blocks")) for m in in_thread(slack, START, ts)),
        what="the plan with its Approve button",
    )
    add_screenshot(sim, rid, b"\x89PNG-real-screenshot-bytes", description="Checkout page after the fix")
    await wait_until(lambda: len(slack.shared_files(START)) == 1, what="the screenshot shared into the thread")
    [shared] = slack.shared_files(START)
    assert shared["thread_ts"] == ts
    assert slack.uploaded(shared["files"][0]["id"]) == b"\x89PNG-real-screenshot-bytes"
    slack.fail_next_uploads(403)
    add_screenshot(sim, rid, description="Second screenshot")
    await wait_until(
        lambda: any("artifact-blobs" in str(m.get("blocks")) for m in in_thread(slack, START, ts)),
        what="the failed upload posted as a link",
    )
    assert await bridge.stop() == 0
    plan = next(m for m in in_thread(slack, START, ts) if APPROVE_PLAN_ACTION_ID in str(m.get("blocks")))
    assert "1. *Reproduce* the flake" in str(plan["blocks"])


async def test_dms_reach_the_creator_and_an_unknown_creator_is_looked_up_once(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    slack.add_user("U0ADA0001", "ada@example.com", name="ada")
    bridge = bridge_with(bridges, slack, {"mine": {"type": "slack", "channel": "@creator"}}, everything_to("mine"))
    await bridge.start()
    ada = {"uid": "u-ada", "email": "ada@example.com", "display_name": "Ada", "type": "user"}
    ghost = {"uid": "u-ghost", "email": "ghost@example.com", "display_name": "Ghost", "type": "user"}
    mine = sim.create_run(title="Ada's run", state="INPROGRESS", creator=ada)["run_id"]
    theirs = sim.create_run(title="Ghost's run", state="INPROGRESS", creator=ghost)["run_id"]
    dm = slack.dm_channel_for("U0ADA0001")
    await wait_until(lambda: len(tops(slack, dm)) == 1, what="the DM")
    sim.update_run(mine, state="BLOCKED", status_message={"message": "Which database?"})
    for state in ("BLOCKED", "FAILED"):
        sim.update_run(theirs, state=state)
    await wait_until(lambda: len(slack.messages(dm)) == 2, what="the reply in the DM thread")
    await wait_until(lambda: _delivered(bridge, 5), what="every event settled")
    ghost_lookups = [c for c in slack.calls_to("users.lookupByEmail") if c.args.get("email") == "ghost@example.com"]
    assert len(ghost_lookups) == 1  # cached as unknown: no retry storm
    assert await bridge.metric("oz_bridge_slack_unknown_creators_total") == 1
    assert await bridge.metric("oz_bridge_dead_letters") == 0
    assert await bridge.stop() == 0
    assert "Blocked" in tops(slack, dm)[0]["text"]


async def _delivered(bridge: BridgeProcess, count: int) -> bool:
    return await bridge.metric('oz_bridge_deliveries_total{outcome="delivered",target="mine"}') >= count


async def test_a_muted_run_gets_no_replies_but_its_status_still_moves(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge = bridge_with(bridges, slack, {}, [])
    await bridge.start()
    ts, rid = started_by_slack(slack, sim)
    # The first sighting is run.created (the status message) and run.queued (a reply): both before the mute.
    await wait_until(lambda: len(replies(slack, ts)) == 1, what="the status message and the first reply")
    [status] = statuses(slack, START, ts)
    before = replies(slack, ts)
    db = create_engine(bridge.database_url)
    try:
        await _mute(db, rid)
    finally:
        await db.dispose()
    sim.update_run(rid, state="INPROGRESS")
    sim.update_run(rid, state="SUCCEEDED")
    await wait_until(lambda: "Succeeded" in str(slack.message(START, status["ts"])), what="status moved in place")
    assert await bridge.stop() == 0
    assert replies(slack, ts) == before  # no reply since the mute
    assert "oz_unmute_run" in str(slack.message(START, status["ts"])["blocks"])  # type: ignore[index]


async def _mute(db: AsyncEngine, run_id: str) -> None:
    async with db.begin() as conn:
        assert await slack_placements.mute(conn, run_id, slack_placements.THREAD_PLACE, None)
