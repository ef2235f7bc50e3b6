"""Slack outbound, end to end: oz-bridge run (subprocess) → the fake Slack Web API over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bridge.sim import Simulator
from tests.e2e.harness import BridgeProcess, fast_config, wait_until
from tests.fakes.slack_api import FakeSlack
from tests.fakes.webhook_receiver import WebhookReceiver

BOT_TOKEN = "xoxb-e2e-0000-secret"
CHANNEL = "C0ALERTS1"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=BOT_TOKEN) as fake:
        yield fake


def slack_bridge(bridges: Callable[..., BridgeProcess], slack: FakeSlack) -> BridgeProcess:
    config = fast_config(
        {"alerts": {"type": "slack", "channel": CHANNEL}}, [{"name": "all", "events": ["*"], "to": ["alerts"]}]
    )
    return bridges(config, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=slack.api_url)


def roots(slack: FakeSlack) -> list[dict[str, Any]]:
    return [c.args for c in slack.calls_to("chat.postMessage") if not c.args.get("thread_ts")]


def replies(slack: FakeSlack) -> list[dict[str, Any]]:
    return [c.args for c in slack.calls_to("chat.postMessage") if c.args.get("thread_ts")]


async def test_failure_posts_one_root_updates_it_and_replies_in_the_thread(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge = slack_bridge(bridges, slack)
    await bridge.start()
    rid = sim.create_run(title="Fix checkout", state="INPROGRESS")["run_id"]
    await wait_until(lambda: len(roots(slack)) == 1, what="the root message")
    [root_ts] = [m["ts"] for m in slack.messages(CHANNEL) if m.get("thread_ts", m["ts"]) == m["ts"]]
    sim.update_run(rid, state="FAILED", status_message={"message": "Tests failed", "error_code": "internal_error"})
    await wait_until(lambda: any("Failed" in c.args["text"] for c in slack.calls_to("chat.update")), what="update")
    await wait_until(lambda: any("Failed" in r["text"] for r in replies(slack)), what="thread reply")
    failed_reply = replies(slack)[-1]
    assert "Tests failed" in str(failed_reply) or "Tests failed" in str(slack.calls_to("chat.update")[-1].args)
    assert failed_reply["thread_ts"] == root_ts
    assert str(failed_reply.get("reply_broadcast")).lower() in ("true", "1")
    assert all(c.args["ts"] == root_ts for c in slack.calls_to("chat.update"))
    assert len(roots(slack)) == 1
    assert await bridge.stop() == 0


async def test_restart_keeps_one_root_per_run_and_channel(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge = slack_bridge(bridges, slack)
    await bridge.start()
    rid = sim.create_run(state="INPROGRESS")["run_id"]
    await wait_until(lambda: len(roots(slack)) == 1, what="the root message")
    assert await bridge.stop() == 0
    sim.update_run(rid, state="SUCCEEDED")
    await bridge.start()
    await wait_until(lambda: any("Succeeded" in c.args["text"] for c in slack.calls_to("chat.update")), what="update")
    await wait_until(lambda: len(replies(slack)) >= 1, what="thread reply after restart")
    assert len(roots(slack)) == 1
    assert await bridge.stop() == 0


async def test_channel_not_found_is_dead_lettered_with_the_slack_code(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    slack.set_channel_error(CHANNEL, "channel_not_found")
    bridge = slack_bridge(bridges, slack)
    await bridge.start()
    sim.create_run(state="INPROGRESS")
    await wait_until(lambda: _dead_letters(bridge), what="dead letter")
    assert await bridge.stop() == 0
    log = "".join(bridge.output)
    assert "slack error: channel_not_found" in log
    assert BOT_TOKEN not in log


async def _dead_letters(bridge: BridgeProcess) -> bool:
    return await bridge.metric("oz_bridge_dead_letters") >= 1


async def test_without_a_bot_token_run_starts_with_slack_targets_disabled(
    sim: Simulator, receiver: WebhookReceiver, bridges: Callable[..., BridgeProcess]
) -> None:
    targets = {
        "alerts": {"type": "slack", "channel": CHANNEL},
        "audit": {"type": "webhook", "url": receiver.url},
    }
    bridge = bridges(fast_config(targets, [{"name": "all", "events": ["*"], "to": ["alerts", "audit"]}]))
    await bridge.start()
    rid = sim.create_run()["run_id"]
    await wait_until(lambda: len(receiver.accepted) == 2, what="the webhook still served")
    assert await bridge.metric("oz_bridge_dead_letters") == 0  # nothing queued for the disabled target
    assert await bridge.stop() == 0
    assert any("slack target disabled" in line for line in bridge.output)
    assert {body["run"]["run_id"] for body in receiver.accepted} == {rid}
