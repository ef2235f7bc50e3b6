"""The fake Slack of every Slack test: the shipped stand-in (``bridge.sim.slack``) plus failure knobs.

The Web API itself is ``SlackStandIn``'s, the same one ``oz-bridge demo --slack``
runs, so the tests exercise the bridge against exactly what the demo shows.
On top of it: injected errors, rate limits, answers lost after the effect,
channel errors, failing upload and ``response_url`` POSTs, and Socket Mode
(``apps.connections.open`` hands out a ``ws://`` URL on the same server).

    async with FakeSlack(token="xoxb-test") as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url)
        await client.chat_postMessage(channel="#alerts", text="hi")
        assert fake.calls_to("chat.postMessage")[0].args["text"] == "hi"
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from bridge.sim.slack import Args, SlackCall, SlackStandIn, channel_id_for

__all__ = [
    "FakeSlack",
    "ResponseUrlPost",
    "SlackCall",
    "channel_id_for",
    "events_api_envelope",
    "interactive_envelope",
]
WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class ResponseUrlPost:
    url: str
    body: Args


def events_api_envelope(event: Args, *, event_id: str, team_id: str = "T0FAKE", retry_attempt: int = 0) -> Args:
    """A Socket Mode envelope carrying an Events API ``event_callback``."""
    payload = {"type": "event_callback", "team_id": team_id, "event_id": event_id, "event": event}
    return {
        "envelope_id": f"env-{event_id}-{retry_attempt}",
        "type": "events_api",
        "payload": payload,
        "accepts_response_payload": False,
        "retry_attempt": retry_attempt,
        "retry_reason": "timeout" if retry_attempt else "",
    }


def interactive_envelope(payload: Args, *, envelope_id: str = "env-interactive-1") -> Args:
    """A Socket Mode envelope carrying an interactivity payload (``block_actions`` …)."""
    return {"envelope_id": envelope_id, "type": "interactive", "payload": payload, "accepts_response_payload": False}


class FakeSlack(SlackStandIn):
    def __init__(self, token: str = "xoxb-test", **identity: Any) -> None:
        super().__init__(token, **identity)
        self.response_url_posts: list[ResponseUrlPost] = []
        self.socket_acks: list[Args] = []
        self._channel_errors: dict[str, str] = {}
        self._failures: dict[str, deque[tuple[str, int]]] = defaultdict(deque)
        self._rate_limits: dict[str, deque[int]] = defaultdict(deque)
        self._response_url_failures: dict[str, int] = {}
        self._after_effect: dict[str, deque[str]] = defaultdict(deque)
        self._sockets: set[web.WebSocketResponse] = set()
        self._changed = asyncio.Condition()
        self._tickets = itertools.count(1)
        self._methods["apps.connections.open"] = self._apps_connections_open

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_get("/socket-mode/link", self._socket)
        app.router.add_post("/response-url/{key}", self._response_url)

    async def stop(self) -> None:
        await self.disconnect_sockets()
        await super().stop()

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    # ---- knobs -------------------------------------------------------------------------------------

    def fail_next(self, method: str, error: str = "channel_not_found", count: int = 1, *, status: int = 200) -> None:
        """The next ``count`` calls of ``method`` answer ``{"ok": false, "error": error}`` with ``status``."""
        self._failures[method].extend([(error, status)] * count)

    def fail_after_effect(self, method: str, how: str = "500", count: int = 1) -> None:
        """The next ``count`` calls of ``method`` take effect, then the answer is lost.

        ``how``: ``"500"`` (``internal_error``), ``"429"`` (``ratelimited``, as a proxy might answer),
        ``"reset"`` (the connection is dropped) or ``"hang"`` (no answer until the caller gives up).
        """
        if how not in ("500", "429", "reset", "hang"):
            raise ValueError(f"unknown failure {how!r}")
        self._after_effect[method].extend([how] * count)

    def clear_failures(self) -> None:
        """Forget every injected error not yet answered."""
        self._failures.clear()

    def rate_limit_next(self, method: str, count: int = 1, retry_after: int = 1) -> None:
        self._rate_limits[method].extend([retry_after] * count)

    def set_channel_error(self, channel: str, error: str) -> None:
        """Every call naming ``channel`` fails with ``error`` (``is_archived``, ``channel_not_found`` …)."""
        self._channel_errors[channel_id_for(channel)] = error

    def remove_bot_from(self, channel: str) -> None:
        self.set_channel_error(channel, "not_in_channel")

    def fail_next_uploads(self, status: int = 500, count: int = 1) -> None:
        """The next ``count`` POSTs to an upload URL answer ``status``."""
        self.files.upload_failures.extend([status] * count)

    def fail_response_url(self, key: str, status: int = 500) -> None:
        """The next POST to ``response_url(key)`` answers ``status`` (it is still recorded)."""
        self._response_url_failures[key] = status

    def response_url(self, key: str = "default") -> str:
        """A ``response_url`` as Slack puts in interactivity payloads; POSTs land in ``response_url_posts``."""
        return f"{self.base_url}/response-url/{key}"

    # ---- the stand-in's hooks ----------------------------------------------------------------------

    async def intercept(self, method: str, request: web.Request) -> web.Response | None:
        if not self._rate_limits[method]:
            return None
        headers = {"Retry-After": str(self._rate_limits[method].popleft())}
        return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers=headers)

    def refusal(self, method: str) -> web.Response | None:
        if not self._failures[method]:
            return None
        error, status = self._failures[method].popleft()
        return web.json_response({"ok": False, "error": error}, status=status)

    async def after_effect(self, method: str, request: web.Request) -> web.Response | None:
        if not self._after_effect[method]:
            return None
        how = self._after_effect[method].popleft()
        if how == "500":
            return web.json_response({"ok": False, "error": "internal_error"}, status=500)
        if how == "429":
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"})
        if how == "hang":
            await asyncio.sleep(3600)  # the client's timeout ends it; stopping the fake cancels it
        assert request.transport is not None
        request.transport.abort()  # "reset": the effect happened, the caller sees a dropped connection
        return web.Response(status=500)

    def channel_error(self, channel: str) -> str | None:
        return self._channel_errors.get(channel)

    # ---- Socket Mode -------------------------------------------------------------------------------

    @property
    def socket_clients(self) -> int:
        return len(self._sockets)

    async def wait_for_socket(self) -> None:
        """Until a Socket Mode client is connected (at most ``WAIT_SECONDS``)."""
        await self._wait_until(lambda: bool(self._sockets))

    async def send_socket_envelope(self, envelope: Args) -> None:
        """Push an envelope to every connected Socket Mode client."""
        if not self._sockets:
            raise RuntimeError("no Socket Mode client is connected; await fake.wait_for_socket() first")
        for socket in list(self._sockets):
            await socket.send_json(envelope)

    async def wait_for_ack(self, envelope_id: str) -> Args:
        """The acknowledgement a client sent for ``envelope_id`` (waits at most ``WAIT_SECONDS``)."""
        await self._wait_until(lambda: any(a.get("envelope_id") == envelope_id for a in self.socket_acks))
        return next(a for a in self.socket_acks if a.get("envelope_id") == envelope_id)

    async def disconnect_sockets(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        self._sockets.clear()

    async def _wait_until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_SECONDS), self._changed:
            await self._changed.wait_for(condition)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json({"type": "hello", "num_connections": len(self._sockets) + 1})
        self._sockets.add(socket)
        await self._notify()
        async for frame in socket:
            if frame.type == WSMsgType.TEXT:
                self.socket_acks.append(json.loads(frame.data))
                await self._notify()
        self._sockets.discard(socket)
        return socket

    def _apps_connections_open(self, _args: Args) -> Args:
        ws_url = self.base_url.replace("http://", "ws://", 1)
        return {"ok": True, "url": f"{ws_url}/socket-mode/link?ticket=ticket-{next(self._tickets)}"}

    async def _response_url(self, request: web.Request) -> web.Response:
        self.response_url_posts.append(ResponseUrlPost(str(request.url), await request.json()))
        status = self._response_url_failures.pop(request.match_info["key"], None)
        if status is not None:
            return web.Response(status=status, text="internal_error")
        return web.json_response({"ok": True})
