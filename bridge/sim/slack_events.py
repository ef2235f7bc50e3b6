"""What Slack sends to an app: signed Events API callbacks and interactivity payloads.

A person's action in the stand-in workspace (``SlackStandIn``) becomes what
Slack would POST to the app's Request URL, signed with the app's signing
secret by slack-sdk's own algorithm: a top-level message that mentions the bot
is a ``message`` event *and* an ``app_mention`` event (two event ids, one
message), a reply in a thread a ``message`` event, a DM a ``message`` event
with ``channel_type: im``, a button click a ``block_actions`` form.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from .slack import Args, SlackStandIn, channel_id_for

_ids = itertools.count(1)


@dataclass
class Sent:
    """A person's message as Slack stored it, and the event ids it was sent to the app with."""

    channel: str
    message: Args
    event_ids: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    @property
    def ts(self) -> str:
        return str(self.message["ts"])


def event_body(event: Args, event_id: str, team_id: str = "T0FAKE") -> Args:
    return {
        "token": "unused-verification-token",
        "team_id": team_id,
        "api_app_id": "AFAKE",
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": event,
    }


class SlackEvents:
    def __init__(self, slack: SlackStandIn, request_url: str, signing_secret: str) -> None:
        self._slack = slack
        self._url = request_url
        self._verifier = SignatureVerifier(signing_secret)

    async def mention(self, channel: str, text: str, *, user: str = "UHUMAN", files: list[Args] | None = None) -> Sent:
        """``@bot text`` at the top of ``channel``: one message, sent as ``message`` and ``app_mention``."""
        typed = f"<@{self._slack.bot_user_id}> {text}"
        message = self._slack.post_user_message(channel, typed, user=user, files=files)
        sent = Sent(channel_id_for(channel), message)
        await self._send(sent, self._event("message", sent.channel, message, files=files))
        await self._send(sent, self._event("app_mention", sent.channel, message, files=files))
        return sent

    async def reply(self, channel: str, thread_ts: str, text: str, *, user: str = "UHUMAN") -> Sent:
        """A person's reply in a thread (``channel`` may be a DM: ``D…``)."""
        message = self._slack.post_user_message(channel, text, user=user, thread_ts=thread_ts)
        sent = Sent(channel_id_for(channel), message)
        await self._send(sent, self._event("message", sent.channel, message))
        if f"<@{self._slack.bot_user_id}>" in text:
            await self._send(sent, self._event("app_mention", sent.channel, message))
        return sent

    async def resend(self, sent: Sent) -> int:
        """Slack's retry of the last event of ``sent`` (same event id, same body)."""
        kind = "app_mention" if len(sent.event_ids) > 1 else "message"
        event = self._event(kind, sent.channel, sent.message, files=sent.message.get("files"))
        return await self.post_event(event, sent.event_ids[-1])

    async def click(self, channel: str, message_ts: str, action_id: str, value: str, *, user: str = "UHUMAN") -> int:
        """A click on a button of the bot's message ``message_ts``."""
        return await self.post_click(self.click_payload(channel, message_ts, action_id, value, user=user))

    def click_payload(self, channel: str, message_ts: str, action_id: str, value: str, *, user: str = "UHUMAN") -> Args:
        """The ``block_actions`` payload of one click (post it again for Slack's retry of that click)."""
        payload: Args = {
            "type": "block_actions",
            "token": "unused-verification-token",
            "trigger_id": f"trigger-{next(_ids)}-{int(time.time())}",
            "user": {"id": user, "username": user.lower()},
            "team": {"id": self._slack.team_id},
            "channel": {"id": channel},
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
            "message": {"ts": message_ts, "type": "message"},
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "b",
                    "value": value,
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return payload

    async def post_click(self, payload: Args) -> int:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self._post(body, "application/x-www-form-urlencoded")

    async def post_event(self, event: Args, event_id: str) -> int:
        return await self._post(
            json.dumps(event_body(event, event_id, self._slack.team_id)).encode(), "application/json"
        )

    def _event(self, kind: str, channel: str, message: Args, *, files: list[Args] | None = None) -> Args:
        event: Args = {
            "type": kind,
            "channel": channel,
            "user": message["user"],
            "text": message["text"],
            "ts": message["ts"],
            "event_ts": message["ts"],
        }
        if kind == "message":
            event["channel_type"] = "im" if str(event["channel"]).startswith("D") else "channel"
        if message.get("thread_ts"):
            event["thread_ts"] = message["thread_ts"]
        if files:
            event["files"] = files
            if kind == "message":
                event["subtype"] = "file_share"
        return event

    async def _send(self, sent: Sent, event: Args) -> None:
        event_id = f"Ev{next(_ids):06d}{int(time.time())}"
        sent.event_ids.append(event_id)
        sent.statuses.append(await self.post_event(event, event_id))

    async def _post(self, body: bytes, content_type: str) -> int:
        timestamp = str(int(time.time()))
        signature = self._verifier.generate_signature(timestamp=timestamp, body=body)
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature or "",
        }
        async with aiohttp.ClientSession() as http, http.post(self._url, data=body, headers=headers) as response:
            await response.read()
            return response.status
