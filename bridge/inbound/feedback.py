"""Telling people in Slack what became of what they did: reactions, thread replies, ephemerals.

Cosmetic touches (the ``eyes`` reaction) never hold up the real work; the
messages that carry an outcome raise ``Transient`` so the worker tries again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bridge.inbound.calls import SlackRefused, Transient, slack_call
from bridge.logs import get_logger

log = get_logger("bridge.inbound.feedback")
_RESPONSE_URL_GONE = frozenset({404, 410})
SLACK_HOOKS_ORIGIN = ("https", "hooks.slack.com", 443)


def origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a URL, to compare where it points; None when it is no URL."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return (parts.scheme, (parts.hostname or "").lower(), port)


class SlackFeedback:
    """Tells people in Slack; ``response_url`` answers go only to Slack itself.

    A ``response_url`` is a value inside a request, so it is followed only when it
    points at Slack's hooks host (or at the configured Slack API's own host, for
    a self-hosted gateway or a fake); anything else would let a payload make the
    bridge POST wherever it names, and falls back to ``chat.postEphemeral``.
    """

    def __init__(self, slack: AsyncWebClient) -> None:
        self._slack = slack
        self._origins = {SLACK_HOOKS_ORIGIN, origin_of(slack.base_url)}

    def follows(self, response_url: str) -> bool:
        origin = origin_of(response_url)
        return origin is not None and origin in self._origins

    async def react(self, channel: str, ts: str, name: str) -> None:
        """Add a reaction; one that is already there is just as good."""
        try:
            await slack_call(self._slack.reactions_add(channel=channel, timestamp=ts, name=name))
        except SlackRefused as exc:
            if exc.error != "already_reacted":
                log.warning("reaction refused by Slack", reaction=name, error=exc.error)

    async def react_soon(self, channel: str, ts: str, name: str) -> None:
        """A courtesy reaction: a failure is logged, never retried."""
        try:
            await self.react(channel, ts, name)
        except Transient as exc:
            log.warning("reaction not added", reaction=name, reason=exc.reason)

    async def thread_reply(self, channel: str, thread_ts: str, text: str) -> None:
        try:
            await slack_call(self._slack.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text))
        except SlackRefused as exc:
            log.warning("thread reply refused by Slack", error=exc.error)

    async def ephemeral(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        try:
            await slack_call(self._slack.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts))
        except SlackRefused as exc:
            log.warning("ephemeral message refused by Slack", error=exc.error)

    async def update_message(self, channel: str, ts: str, text: str, blocks: Sequence[Block | dict[str, Any]]) -> None:
        try:
            await slack_call(self._slack.chat_update(channel=channel, ts=ts, text=text, blocks=blocks))
        except SlackRefused as exc:
            log.warning("message update refused by Slack", error=exc.error)

    async def to_clicker(self, response_url: str | None, channel: str | None, user: str, text: str) -> None:
        """An answer only the person who clicked sees: via response_url, else chat.postEphemeral."""
        if response_url and not self.follows(response_url):
            log.warning("response_url ignored: it does not point at Slack", user=user, channel=channel)
        elif response_url and await self._respond(response_url, text):
            return
        if channel:
            await self.ephemeral(channel, user, text)

    async def _respond(self, response_url: str, text: str) -> bool:
        """True when the answer went out by ``response_url``; else the caller posts an ephemeral."""
        webhook = AsyncWebhookClient(response_url, timeout=10)
        try:
            response = await slack_call(webhook.send(text=text, response_type="ephemeral", replace_original=False))
        except SlackRefused:
            return False
        except Transient as exc:
            # chat.postEphemeral reaches the clicker now; retrying the URL would hold a worker for nothing.
            log.warning("response_url unreachable; answering with an ephemeral message", reason=exc.reason)
            return False
        if response.status_code == 200:
            return True
        # An expired or used-up response_url, or Slack's hooks failing: chat.postEphemeral instead.
        if response.status_code not in _RESPONSE_URL_GONE:
            log.warning("response_url refused the answer", status=response.status_code)
        return False
