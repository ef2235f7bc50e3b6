"""Socket Mode: the same inbox and handlers as HTTP, envelopes acked, a stalled socket replaced."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bridge.inbound.socket import SocketModeInbound, SocketWatchdog
from tests.fakes.slack_api import events_api_envelope, interactive_envelope
from tests.inbound.harness import APP_TOKEN, Harness, HarnessFactory, action_payload


async def eventually(condition: Callable[[], object], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def socket_harness(make_harness: HarnessFactory, **slack: Any) -> Harness:
    harness = await make_harness(app_token=APP_TOKEN, start=True, **slack)
    await harness.fake.wait_for_socket()
    client = socket_of(harness).client
    assert client is not None
    # The server side is up a moment before the SDK has its receiver running.
    await eventually(lambda: client.current_session is not None and client.message_receiver is not None)
    return harness


def socket_of(harness: Harness) -> SocketModeInbound:
    assert harness.inbound.socket_mode is not None
    return harness.inbound.socket_mode


async def test_a_thread_reply_over_socket_mode_is_acked_and_becomes_one_follow_up(
    make_harness: HarnessFactory,
) -> None:
    harness = await socket_harness(make_harness, signing_secret=None)
    thread = await harness.thread()
    envelope = events_api_envelope(harness.reply(thread, "<@UBOT> over the socket"), event_id="EvSock1")

    await harness.fake.send_socket_envelope(envelope)
    ack = await harness.fake.wait_for_ack(envelope["envelope_id"])

    assert ack == {"envelope_id": envelope["envelope_id"]}
    await eventually(harness.sim.followups)
    assert [(f.message, f.mode) for f in harness.sim.followups(thread.run_id)] == [("over the socket", "normal")]


async def test_a_redelivered_envelope_is_acked_and_not_acted_on_twice(make_harness: HarnessFactory) -> None:
    harness = await socket_harness(make_harness)
    thread = await harness.thread()
    reply = harness.reply(thread, "/plan only once")

    first = events_api_envelope(reply, event_id="EvSock2")
    await harness.fake.send_socket_envelope(first)
    await harness.fake.wait_for_ack(first["envelope_id"])
    await eventually(harness.sim.followups)
    retry = events_api_envelope(reply, event_id="EvSock2", retry_attempt=1)
    await harness.fake.send_socket_envelope(retry)
    await harness.fake.wait_for_ack(retry["envelope_id"])
    # The same message also arriving over HTTP (another replica's door) is the same message.
    await harness.post_event({**reply, "type": "app_mention"})
    await harness.settle()

    assert [(f.message, f.mode) for f in harness.sim.followups(thread.run_id)] == [("only once", "plan")]


async def test_a_cancel_click_over_socket_mode_cancels_and_answers_the_clicker(make_harness: HarnessFactory) -> None:
    harness = await socket_harness(make_harness, signing_secret=None)
    thread = await harness.thread("INPROGRESS")
    payload = action_payload(thread.root_ts, thread.run_id, response_url=harness.fake.response_url("sock"))
    envelope = interactive_envelope(payload, envelope_id="env-click-1")

    await harness.fake.send_socket_envelope(envelope)
    await harness.fake.wait_for_ack("env-click-1")
    await eventually(lambda: harness.fake.response_url_posts)

    assert [c.status for c in harness.sim.cancels()] == [200]
    assert "cancelled" in harness.fake.response_url_posts[0].body["text"]


async def test_bot_messages_over_socket_mode_are_acked_and_ignored(make_harness: HarnessFactory) -> None:
    harness = await socket_harness(make_harness)
    thread = await harness.thread()
    envelope = events_api_envelope({**harness.reply(thread, "beep"), "bot_id": "BOTHER"}, event_id="EvSock3")
    await harness.fake.send_socket_envelope(envelope)
    await harness.fake.wait_for_ack(envelope["envelope_id"])
    await harness.settle()
    assert harness.sim.followups() == []


async def test_the_watchdog_replaces_a_connection_whose_receiver_died(make_harness: HarnessFactory) -> None:
    harness = await socket_harness(make_harness)
    socket_mode = socket_of(harness)
    assert socket_mode.client is not None and socket_mode.watchdog is not None
    assert socket_mode.client.message_receiver is not None
    socket_mode.client.message_receiver.cancel()  # the socket is open but nothing reads from it any more
    await asyncio.sleep(0)
    opened = len(harness.fake.calls_to("apps.connections.open"))

    assert await socket_mode.watchdog.check() is True

    assert len(harness.fake.calls_to("apps.connections.open")) == opened + 1
    thread = await harness.thread()
    envelope = events_api_envelope(harness.reply(thread, "after the reconnect"), event_id="EvSock4")
    await harness.fake.wait_for_socket()
    await harness.fake.send_socket_envelope(envelope)
    await harness.fake.wait_for_ack(envelope["envelope_id"])
    await eventually(harness.sim.followups)


async def test_the_watchdog_leaves_a_healthy_connection_alone(make_harness: HarnessFactory) -> None:
    harness = await socket_harness(make_harness)
    socket_mode = socket_of(harness)
    assert socket_mode.watchdog is not None
    opened = len(harness.fake.calls_to("apps.connections.open"))
    assert await socket_mode.watchdog.check() is False  # sends a probe
    await asyncio.sleep(0.2)  # the fake server answers it with a pong
    assert await socket_mode.watchdog.check() is False
    assert len(harness.fake.calls_to("apps.connections.open")) == opened


class StubSession:
    def __init__(self) -> None:
        self.closed = False
        self.pings: list[bytes] = []

    async def ping(self, data: bytes) -> None:
        self.pings.append(data)


class StubClient:
    """Just the attributes of slack-sdk's SocketModeClient the watchdog reads."""

    def __init__(self) -> None:
        self.closed = False
        self.current_session: StubSession | None = StubSession()
        self.message_receiver: asyncio.Future[None] | None = None
        self.last_ping_pong_time: float | None = None
        self.reconnects = 0

    async def connect_to_new_endpoint(self, force: bool = False) -> None:
        self.reconnects += 1
        self.current_session = StubSession()


async def test_a_ping_left_unanswered_means_a_stalled_connection() -> None:
    now = [1000.0]
    client = StubClient()
    watchdog = SocketWatchdog(client, clock=lambda: now[0])  # type: ignore[arg-type]

    assert await watchdog.check() is False
    assert client.current_session is not None and client.current_session.pings == [b"sdk-ping-pong:1000.0"]
    client.last_ping_pong_time = 1000.0  # the SDK saw the pong of our probe
    now[0] = 1015.0
    assert await watchdog.check() is False
    now[0] = 1030.0  # the probe sent at 1015 was never answered
    assert await watchdog.check() is True
    assert client.reconnects == 1


async def test_a_closed_session_or_a_closed_client_is_handled() -> None:
    client = StubClient()
    watchdog = SocketWatchdog(client)  # type: ignore[arg-type]
    assert client.current_session is not None
    client.current_session.closed = True
    assert await watchdog.check() is True
    client.closed = True  # shutting down: never reconnect
    client.current_session = None
    assert await watchdog.check() is False
    assert client.reconnects == 1
