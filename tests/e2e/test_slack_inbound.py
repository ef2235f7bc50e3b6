"""Slack inbound, end to end: signed requests and Socket Mode envelopes into oz-bridge run (subprocess),
follow-ups and cancels out to the Oz simulator, answers back to the fake Slack."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from bridge.sim import Simulator
from tests.e2e.harness import BridgeProcess, fast_config, wait_until
from tests.fakes.slack_api import FakeSlack, events_api_envelope
from tests.inbound.harness import SIGNING_SECRET, action_payload, event_body, sign

BOT_TOKEN = "xoxb-e2e-inbound"
APP_TOKEN = "xapp-e2e-inbound"
CHANNEL = "C0TESTCHAN1"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=BOT_TOKEN, app_token=APP_TOKEN) as fake:
        yield fake


async def started(bridges: Callable[..., BridgeProcess], slack: FakeSlack, **env: str) -> BridgeProcess:
    config = fast_config(
        {"alerts": {"type": "slack", "channel": CHANNEL}}, [{"name": "all", "events": ["*"], "to": ["alerts"]}]
    )
    bridge = bridges(config, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=slack.api_url, **env)
    await bridge.start()
    return bridge


async def run_with_thread(sim: Simulator, slack: FakeSlack, state: str = "INPROGRESS") -> tuple[str, str]:
    run_id = sim.create_run(state=state)["run_id"]
    await wait_until(lambda: bool(_roots(slack)), what="the run's root message")
    return run_id, _roots(slack)[0]["ts"]


def _roots(slack: FakeSlack) -> list[dict[str, Any]]:
    return [m for m in slack.messages(CHANNEL) if m.get("thread_ts", m["ts"]) == m["ts"]]


def human_reply(slack: FakeSlack, root_ts: str, text: str) -> dict[str, Any]:
    message = slack.post_user_message(CHANNEL, text, user="UHUMAN", thread_ts=root_ts)
    return {"type": "message", "channel": CHANNEL, "channel_type": "channel", "user": "UHUMAN", "text": text,
            "ts": message["ts"], "thread_ts": root_ts, "event_ts": message["ts"]}  # fmt: skip


async def post_signed(bridge: BridgeProcess, body: bytes, content_type: str) -> int:
    headers = {"Content-Type": content_type, **sign(body)}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{bridge.url}/slack/events", data=body, headers=headers) as r,
    ):
        return r.status


async def post_event(bridge: BridgeProcess, event: dict[str, Any], event_id: str) -> int:
    return await post_signed(bridge, json.dumps(event_body(event, event_id)).encode(), "application/json")


async def test_thread_reply_becomes_exactly_one_follow_up_even_when_slack_retries(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge = await started(bridges, slack, SLACK_SIGNING_SECRET=SIGNING_SECRET)
    run_id, root_ts = await run_with_thread(sim, slack)
    reply = human_reply(slack, root_ts, "<@UBOT> please also update the changelog")
    assert await post_event(bridge, reply, "Ev0001") == 200
    assert await post_event(bridge, reply, "Ev0001") == 200  # Slack's retry of the same event
    await wait_until(lambda: len(sim.followups(run_id)) == 1, what="the follow-up")
    await wait_until(
        lambda: any(c.args.get("name") == "white_check_mark" for c in slack.calls_to("reactions.add")), what="✅"
    )
    [followup] = sim.followups(run_id)
    assert (followup.message, followup.mode) == ("please also update the changelog", "normal")
    plan = human_reply(slack, root_ts, "/plan split this into two PRs")
    assert await post_event(bridge, plan, "Ev0002") == 200
    await wait_until(lambda: len(sim.followups(run_id)) == 2, what="the plan follow-up")
    assert (sim.followups(run_id)[1].message, sim.followups(run_id)[1].mode) == ("split this into two PRs", "plan")
    assert len(sim.followups(run_id)) == 2
    assert await bridge.stop() == 0


async def test_bad_signature_is_401_and_bot_messages_are_ignored(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge = await started(bridges, slack, SLACK_SIGNING_SECRET=SIGNING_SECRET)
    run_id, root_ts = await run_with_thread(sim, slack)
    body = json.dumps(event_body(human_reply(slack, root_ts, "hi"), "Ev0100")).encode()
    headers = {"Content-Type": "application/json", **sign(body, secret="not-the-secret")}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{bridge.url}/slack/events", data=body, headers=headers) as r,
    ):
        assert r.status == 401
    bot = {**human_reply(slack, root_ts, "from a bot"), "bot_id": "BOTHER", "subtype": "bot_message"}
    assert await post_event(bridge, bot, "Ev0101") == 200
    assert await bridge.stop() == 0
    assert sim.followups(run_id) == []


async def test_cancel_button_cancels_the_run_and_updates_the_root(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge = await started(bridges, slack, SLACK_SIGNING_SECRET=SIGNING_SECRET)
    run_id, root_ts = await run_with_thread(sim, slack)
    payload = action_payload(root_ts, run_id, response_url=slack.response_url("cancel"))
    body = urlencode({"payload": json.dumps(payload)}).encode()
    assert await post_signed(bridge, body, "application/x-www-form-urlencoded") == 200
    await wait_until(lambda: len(sim.cancels(run_id)) == 1, what="the cancel")
    await wait_until(lambda: bool(slack.response_url_posts), what="the clicker told the outcome")
    await wait_until(
        lambda: any(
            c.args["ts"] == root_ts and "Cancel" in c.args.get("text", "") for c in slack.calls_to("chat.update")
        ),
        what="the root showing the cancellation",
    )
    assert sim.get_run(run_id)["state"] == "CANCELLED"
    assert await bridge.stop() == 0


async def test_socket_mode_delivers_replies_through_the_same_handlers(
    sim: Simulator, slack: FakeSlack, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge = await started(bridges, slack, SLACK_APP_TOKEN=APP_TOKEN)
    await slack.wait_for_socket()
    run_id, root_ts = await run_with_thread(sim, slack)
    envelope = events_api_envelope(human_reply(slack, root_ts, "ship it"), event_id="EvSock1")
    await slack.send_socket_envelope(envelope)
    await slack.wait_for_ack(envelope["envelope_id"])
    await wait_until(lambda: [f.message for f in sim.followups(run_id)] == ["ship it"], what="socket follow-up")
    status, _ = await bridge.get("/slack/events")
    assert status in (404, 405)  # no signing secret: no HTTP endpoint
    assert await bridge.stop() == 0
