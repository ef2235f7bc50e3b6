"""Inbound Slack test harness: the real bridge inbound over HTTP, the Oz simulator, a fake Slack.

Requests are signed with Slack's real algorithm; the database is a migrated
SQLite file; follow-ups and cancels reach the simulator through the real SDK.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbound import Inbound, WorkerSettings
from bridge.metrics import Metrics
from bridge.notifiers.slack_messages import CANCEL_ACTION_ID
from bridge.settings import Settings, SlackSettings
from bridge.sim import Simulator
from bridge.store import slack_threads
from tests.fakes.slack_api import FakeSlack

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-test"
APP_TOKEN = "xapp-test"
API_KEY = "sim-key"
CHANNEL = "C0TESTCHAN1"
HUMAN = "UHUMAN"
FAST = WorkerSettings(first_retry=0.05, max_backoff=0.2, check_interval=0.05)
_ids = itertools.count(1)


def sign(body: bytes, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """Slack's headers for ``body``: v0 HMAC-SHA256 over ``v0:{ts}:{body}``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


def sign_raw(body: bytes, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """Slack's algorithm over the raw bytes, so even a body that isn't UTF-8 gets a valid signature."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def event_body(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "token": "legacy-verification-token",
        "team_id": "T0FAKE",
        "api_app_id": "AFAKE",
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_ids):08d}",
        "event_time": int(time.time()),
        "event": event,
    }


def action_payload(
    root_ts: str,
    run_id: str,
    *,
    action_id: str = CANCEL_ACTION_ID,
    user: str = HUMAN,
    response_url: str | None = None,
    trigger_id: str | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "token": "legacy-verification-token",
        "trigger_id": trigger_id or f"trigger-{next(_ids)}",
        "user": {"id": user, "username": "human"},
        "team": {"id": "T0FAKE"},
        "channel": {"id": CHANNEL, "name": "runs"},
        "container": {"type": "message", "message_ts": root_ts, "channel_id": CHANNEL},
        "message": {"ts": root_ts, "type": "message"},
        "actions": [{"action_id": action_id, "block_id": "b1", "value": run_id, "type": "button", "action_ts": "1.2"}],
    }
    if response_url:
        payload["response_url"] = response_url
    return payload


@dataclass
class Thread:
    run_id: str
    channel: str
    root_ts: str


@dataclass
class Harness:
    sim: Simulator
    fake: FakeSlack
    slack: AsyncWebClient
    engine: AsyncEngine
    inbound: Inbound
    client: TestClient[Any, Any]
    metrics: Metrics
    sent: list[str] = field(default_factory=list)

    async def post(self, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> ClientResponse:
        merged = {"Content-Type": content_type, **sign(body), **(headers or {})}
        return await self.client.post("/slack/events", data=body, headers=merged)

    async def post_event(self, event: dict[str, Any], event_id: str | None = None) -> ClientResponse:
        body = event_body(event, event_id)
        self.sent.append(body["event_id"])
        return await self.post(json.dumps(body).encode(), "application/json")

    async def post_action(self, payload: dict[str, Any]) -> ClientResponse:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(body, "application/x-www-form-urlencoded")

    async def thread(self, state: str = "INPROGRESS", **run: Any) -> Thread:
        """A run in the simulator, its root message in Slack, and the bridge's record of it."""
        created = self.sim.create_run(state=state, **run)
        posted = await self.slack.chat_postMessage(channel=CHANNEL, text=f"root of {created['run_id']}")
        return await self.record_thread(created["run_id"], str(posted["ts"]))

    async def record_thread(self, run_id: str, root_ts: str) -> Thread:
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            await slack_threads.reserve(
                conn, run_id, CHANNEL, channel_id=CHANNEL, claimed_by="test", event_id="root", now=now
            )
            await slack_threads.record_root(
                conn, run_id, CHANNEL, channel_id=CHANNEL, ts=root_ts, shown_updated_at=None
            )
        return Thread(run_id, CHANNEL, root_ts)

    def reply(self, thread: Thread, text: str, *, user: str = HUMAN, **extra: Any) -> dict[str, Any]:
        """A person's reply in the thread: stored in the fake Slack, returned as its message event."""
        message = self.fake.post_user_message(thread.channel, text, user=user, thread_ts=thread.root_ts)
        return {
            "type": "message",
            "channel": thread.channel,
            "channel_type": "channel",
            "user": user,
            "text": text,
            "ts": message["ts"],
            "thread_ts": thread.root_ts,
            "event_ts": message["ts"],
            **extra,
        }

    async def settle(self) -> None:
        """Let the inbox worker take every due row as far as it goes."""
        worker = self.inbound.worker
        for _ in range(50):
            claimed = await worker.run_once()
            await worker.drain()
            if not claimed:
                return
        raise AssertionError("the inbox never settled")

    def reactions(self, thread: Thread, ts: str) -> list[str]:
        message = self.fake.message(thread.channel, ts) or {}
        return [reaction["name"] for reaction in message.get("reactions", [])]

    def thread_texts(self, thread: Thread) -> list[str]:
        return [
            str(m.get("text"))
            for m in self.fake.messages(thread.channel)
            if m.get("thread_ts") == thread.root_ts and m["ts"] != thread.root_ts and m.get("bot_id")
        ]


HarnessFactory = Callable[..., Awaitable[Harness]]


def make_settings(tmp_path: Path, **slack: Any) -> Settings:
    values: dict[str, Any] = {"bot_token": BOT_TOKEN, "signing_secret": SIGNING_SECRET, **slack}
    return Settings(database_url=f"sqlite:///{tmp_path / 'bridge.db'}", slack=SlackSettings(**values))


async def always_ready() -> tuple[bool, dict[str, object]]:
    return True, {}


async def no_metrics() -> bytes:
    return b""
