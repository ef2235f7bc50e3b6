"""Socket Mode on aiohttp: the same inbox as HTTP, over Slack's websocket.

An envelope is acknowledged once its request is stored (well within Slack's
3 s), and not acknowledged when storing failed, so Slack delivers it again.
A watchdog probes the connection with pings of its own and reconnects when a
probe goes unanswered or the SDK's receiver has died: a socket that silently
stopped delivering is replaced instead of leaving the bridge deaf.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import SQLAlchemyError

from bridge.inbound.inbox import Intake
from bridge.inbound.priority import AnswersFirst
from bridge.inbound.request import MalformedRequest, parse_socket
from bridge.logs import get_logger

log = get_logger("bridge.inbound.socket")
# The prefix the SDK's receiver recognises in pongs; it records the echoed time.
_PROBE_PREFIX = "sdk-ping-pong"


class SocketWatchdog:
    """Reconnects a Socket Mode client whose connection no longer answers."""

    def __init__(self, client: SocketModeClient, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._clock = clock
        self._probe_sent_at: float | None = None

    def stall_reason(self) -> str | None:
        client = self._client
        session = client.current_session
        if session is None or session.closed:
            return "the websocket is closed"
        receiver = client.message_receiver
        if receiver is not None and receiver.done():
            return "the message receiver stopped"
        if self._probe_sent_at is not None:
            # The SDK stores the time echoed back in the newest pong it received.
            answered = client.last_ping_pong_time is not None and client.last_ping_pong_time >= self._probe_sent_at
            if not answered:
                return "a ping went unanswered"
        return None

    async def check(self) -> bool:
        """One look at the connection; True when it was found stalled and replaced."""
        if self._client.closed:
            return False
        reason = self.stall_reason()
        if reason is not None:
            log.warning("Socket Mode connection stalled; reconnecting", reason=reason)
            self._probe_sent_at = None
            await self._client.connect_to_new_endpoint(force=True)
            return True
        await self._probe()
        return False

    async def _probe(self) -> None:
        session = self._client.current_session
        sent_at = self._clock()
        try:
            assert session is not None
            await session.ping(f"{_PROBE_PREFIX}:{sent_at}".encode())
        except Exception as exc:
            log.warning("Socket Mode ping failed", error=type(exc).__name__)
        self._probe_sent_at = sent_at


class SocketModeInbound:
    """Owns the Socket Mode client: connect, receive, acknowledge, watch, close."""

    def __init__(
        self,
        app_token: str,
        web_client: AsyncWebClient,
        intake: Intake,
        *,
        priority: AnswersFirst | None = None,
        ping_interval: float = 5.0,
        watchdog_interval: float = 15.0,
    ) -> None:
        self._app_token = app_token
        self._web_client = web_client
        self._intake = intake
        self._priority = priority or AnswersFirst()
        self._ping_interval = ping_interval
        self._watchdog_interval = watchdog_interval
        self.client: SocketModeClient | None = None
        self.watchdog: SocketWatchdog | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Built here: the SDK client starts tasks and a session on the running loop.
        self.client = SocketModeClient(
            app_token=self._app_token,
            web_client=self._web_client,
            ping_interval=self._ping_interval,
            logger=logging.getLogger("slack_sdk.socket_mode"),
        )
        self.client.socket_mode_request_listeners.append(self.on_request)
        self.watchdog = SocketWatchdog(self.client)
        self._task = asyncio.create_task(self._connect_and_watch(), name="slack-socket-mode")

    async def _connect_and_watch(self) -> None:
        assert self.client is not None and self.watchdog is not None
        # connect() retries by itself until Slack lets us in; HTTP keeps serving meanwhile.
        await self.client.connect()  # type: ignore[no-untyped-call]
        log.info("Socket Mode connected")
        while not self.client.closed:
            await asyncio.sleep(self._watchdog_interval)
            try:
                await self.watchdog.check()
            except Exception as exc:
                log.warning("Socket Mode watchdog check failed", error=type(exc).__name__)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.client is not None:
            await self.client.close()  # type: ignore[no-untyped-call]

    async def on_request(self, client: AsyncBaseSocketModeClient, envelope: SocketModeRequest) -> None:
        with self._priority.answering():
            await self._answer(client, envelope)

    async def _answer(self, client: AsyncBaseSocketModeClient, envelope: SocketModeRequest) -> None:
        try:
            request = parse_socket(envelope)
        except MalformedRequest as exc:
            # Acknowledged all the same: Slack would only redeliver the same bad payload.
            log.warning("malformed Socket Mode payload ignored", envelope_type=envelope.type, reason=str(exc))
        else:
            try:
                await self._intake.accept(request)
            except (SQLAlchemyError, OSError) as exc:
                # Not stored, so not acknowledged: Slack delivers the envelope again.
                log.warning("could not store a Socket Mode request; Slack will redeliver it", error=type(exc).__name__)
                return
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=envelope.envelope_id))
