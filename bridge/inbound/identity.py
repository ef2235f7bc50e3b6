"""Who the bridge is in Slack (``auth.test``), so its own messages are never taken as replies."""

from __future__ import annotations

import asyncio

from slack_sdk.web.async_client import AsyncWebClient

from bridge.inbound.calls import SlackRefused, Transient, slack_call


class BotIdentity:
    def __init__(self, slack: AsyncWebClient) -> None:
        self._slack = slack
        self._user_id: str | None = None
        self._lock = asyncio.Lock()

    async def user_id(self) -> str:
        """The bot's own user id, asked once and remembered; Transient until Slack answers."""
        async with self._lock:
            if self._user_id is None:
                try:
                    response = await slack_call(self._slack.auth_test())
                except SlackRefused as exc:
                    # A bad token is an operator problem; keep the rows until it is fixed.
                    raise Transient(f"auth.test refused: {exc.error}") from None
                self._user_id = str(response.get("user_id") or "")
            return self._user_id
