"""The fake Slack answers slack-sdk's real clients the way Slack does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import FakeSlack, channel_id_for, events_api_envelope

TOKEN = "xoxb-test"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN) as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=fake.api_url, retry_handlers=[])


async def test_auth_test_names_the_bot_and_checks_the_token(fake: FakeSlack, client: AsyncWebClient) -> None:
    me = await client.auth_test()
    assert (me["user_id"], me["bot_id"]) == ("UBOT", "BBOT")
    intruder = AsyncWebClient(token="xoxb-wrong", base_url=fake.api_url)
    with pytest.raises(SlackApiError) as caught:
        await intruder.auth_test()
    assert caught.value.response["error"] == "invalid_auth"


async def test_post_message_maps_channel_names_to_stable_ids(fake: FakeSlack, client: AsyncWebClient) -> None:
    first = await client.chat_postMessage(
        channel="#alerts", text="one", metadata={"event_type": "e", "event_payload": {}}
    )
    second = await client.chat_postMessage(channel="alerts", text="two")
    third = await client.chat_postMessage(channel="C0123456789", text="three")
    assert first["channel"] == second["channel"] == channel_id_for("#alerts")
    assert first["channel"].startswith("C")
    assert third["channel"] == "C0123456789"
    assert float(first["ts"]) < float(second["ts"])
    assert first["message"]["metadata"] == {"event_type": "e", "event_payload": {}}


async def test_form_bodies_have_their_json_fields_decoded(fake: FakeSlack) -> None:
    blocks = '[{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]'
    async with aiohttp.ClientSession() as session:
        form = {"channel": "C0123456789", "blocks": blocks, "thread_ts": "1.0", "reply_broadcast": "1"}
        async with session.post(f"{fake.api_url}chat.postMessage", data=form, headers=_auth()) as response:
            assert (await response.json())["ok"] is True
    call = fake.calls_to("chat.postMessage")[0]
    assert call.args["blocks"][0]["text"]["text"] == "hi"
    assert fake.messages("C0123456789")[0]["subtype"] == "thread_broadcast"


async def test_invalid_blocks_and_long_text_are_refused(client: AsyncWebClient) -> None:
    too_long = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C0123456789", text="t", blocks=[too_long])
    assert caught.value.response["error"] == "invalid_blocks"
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C0123456789", text="x" * 40001)
    assert caught.value.response["error"] == "msg_too_long"


async def test_update_and_history_newest_first_with_metadata_on_request(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    meta = {"event_type": "oz_run", "event_payload": {"run_id": "r1"}}
    root = await client.chat_postMessage(channel="C0123456789", text="root", metadata=meta)
    await client.chat_postMessage(channel="C0123456789", text="reply", thread_ts=root["ts"])
    later = await client.chat_postMessage(channel="C0123456789", text="later")
    await client.chat_update(channel="C0123456789", ts=root["ts"], text="root v2")

    plain = await client.conversations_history(channel="C0123456789")
    assert [m["text"] for m in plain["messages"]] == ["later", "root v2"]
    assert "metadata" not in plain["messages"][1]
    full = await client.conversations_history(channel="C0123456789", include_all_metadata=True, limit=1)
    assert full["has_more"] is True
    page2 = await client.conversations_history(
        channel="C0123456789", include_all_metadata=True, limit=1, cursor=full["response_metadata"]["next_cursor"]
    )
    assert page2["messages"][0]["metadata"] == meta
    newer = await client.conversations_history(channel="C0123456789", oldest=root["ts"])
    assert [m["ts"] for m in newer["messages"]] == [later["ts"]]
    replies = await client.conversations_replies(channel="C0123456789", ts=root["ts"])
    assert [m["text"] for m in replies["messages"]] == ["root v2", "reply"]


async def test_update_of_a_deleted_message_is_message_not_found(fake: FakeSlack, client: AsyncWebClient) -> None:
    root = await client.chat_postMessage(channel="C0123456789", text="root")
    fake.delete_message("C0123456789", root["ts"])
    with pytest.raises(SlackApiError) as caught:
        await client.chat_update(channel="C0123456789", ts=root["ts"], text="again")
    assert caught.value.response["error"] == "message_not_found"


async def test_reactions_refuse_duplicates(fake: FakeSlack, client: AsyncWebClient) -> None:
    message = fake.post_user_message("C0123456789", "please do it")
    await client.reactions_add(channel="C0123456789", timestamp=message["ts"], name="eyes")
    with pytest.raises(SlackApiError) as caught:
        await client.reactions_add(channel="C0123456789", timestamp=message["ts"], name="eyes")
    assert caught.value.response["error"] == "already_reacted"
    assert fake.message("C0123456789", message["ts"])["reactions"][0]["name"] == "eyes"  # type: ignore[index]


async def test_injected_failures_rate_limits_and_channel_errors(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.fail_next("chat.postMessage", "internal_error", status=500)
    fake.rate_limit_next("chat.postMessage", retry_after=7)
    fake.remove_bot_from("#private")
    with pytest.raises(SlackApiError) as limited:
        await client.chat_postMessage(channel="C0123456789", text="a")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    with pytest.raises(SlackApiError) as failed:
        await client.chat_postMessage(channel="C0123456789", text="b")
    assert (failed.value.response.status_code, failed.value.response["error"]) == (500, "internal_error")
    with pytest.raises(SlackApiError) as outside:
        await client.chat_postMessage(channel="#private", text="c")
    assert outside.value.response["error"] == "not_in_channel"
    assert (await client.chat_postMessage(channel="C0123456789", text="d"))["ok"] is True
    assert len(fake.calls_to("chat.postMessage")) == 4


async def test_ephemeral_and_response_url(fake: FakeSlack, client: AsyncWebClient) -> None:
    answer = await client.chat_postEphemeral(channel="C0123456789", user="U1", text="only you")
    assert answer["message_ts"]
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.response_url("click-1"), json={"text": "cancelled"}) as response,
    ):
        assert response.status == 200
    assert fake.response_url_posts[0].body == {"text": "cancelled"}
    assert fake.response_url_posts[0].url.endswith("/response-url/click-1")


async def test_socket_mode_delivers_envelopes_and_records_acks(fake: FakeSlack) -> None:
    received: list[SocketModeRequest] = []

    async def listener(socket: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        received.append(request)
        await socket.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

    web = AsyncWebClient(token=TOKEN, base_url=fake.api_url)
    socket = SocketModeClient(app_token="xapp-test", web_client=web)
    socket.socket_mode_request_listeners.append(listener)
    await socket.connect()  # type: ignore[no-untyped-call]
    try:
        await fake.wait_for_socket()
        envelope = events_api_envelope({"type": "message", "text": "hi"}, event_id="Ev1")
        await fake.send_socket_envelope(envelope)
        ack = await fake.wait_for_ack(envelope["envelope_id"])
    finally:
        await socket.close()  # type: ignore[no-untyped-call]
    assert ack == {"envelope_id": envelope["envelope_id"]}
    assert received[0].payload["event"]["text"] == "hi"
    assert fake.calls_to("apps.connections.open")


async def test_app_token_only_opens_connections(fake: FakeSlack, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as caught:
        await client.apps_connections_open(app_token=TOKEN)
    assert caught.value.response["error"] == "not_allowed_token_type"


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


async def test_files_upload_v2_puts_the_bytes_at_the_upload_url_and_shares_them_in_the_thread(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    root = await client.chat_postMessage(channel="C0SHOTS01", text="root")
    done = await client.files_upload_v2(
        channel="C0SHOTS01", thread_ts=root["ts"], file=b"\x89PNG-bytes", filename="shot.png", title="Shot"
    )
    file_id = done["file"]["id"]
    assert fake.uploaded(file_id) == b"\x89PNG-bytes"
    [shared] = fake.shared_files("C0SHOTS01")
    assert shared["thread_ts"] == root["ts"] and shared["files"][0]["id"] == file_id
    assert [c.method for c in fake.calls][-2:] == ["files.getUploadURLExternal", "files.completeUploadExternal"]


async def test_a_failed_upload_url_post_stops_files_upload_v2(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.fail_next_uploads(500)
    with pytest.raises(SlackRequestError):
        await client.files_upload_v2(channel="C0SHOTS01", file=b"x", filename="shot.png")
    assert fake.shared_files("C0SHOTS01") == []


async def test_users_are_found_by_email_and_get_a_dm_channel(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.add_user("U0ADA0001", "ada@example.com", name="ada")
    found = await client.users_lookupByEmail(email="Ada@Example.com")
    assert found["user"]["id"] == "U0ADA0001"
    assert (await client.users_info(user="U0ADA0001"))["user"]["profile"]["email"] == "ada@example.com"
    opened = await client.conversations_open(users="U0ADA0001")
    dm = opened["channel"]["id"]
    assert dm == fake.dm_channel_for("U0ADA0001") and dm.startswith("D")
    posted = await client.chat_postMessage(channel=dm, text="hello")
    assert fake.message(dm, posted["ts"]) is not None
    with pytest.raises(SlackApiError) as caught:
        await client.users_lookupByEmail(email="nobody@example.com")
    assert caught.value.response["error"] == "users_not_found"


@pytest.mark.parametrize(
    ("how", "raised"), [("500", SlackApiError), ("429", SlackApiError), ("reset", aiohttp.ClientError)]
)
async def test_a_call_can_take_effect_and_lose_its_answer(
    fake: FakeSlack, client: AsyncWebClient, how: str, raised: type[Exception]
) -> None:
    fake.fail_after_effect("chat.postMessage", how)
    with pytest.raises(raised):
        await client.chat_postMessage(channel="C0123456789", text="took effect")
    assert [m["text"] for m in fake.messages("C0123456789")] == ["took effect"]
    await client.chat_postMessage(channel="C0123456789", text="answered")  # only the next call was affected


async def test_a_hanging_answer_ends_with_the_clients_timeout(fake: FakeSlack) -> None:
    fake.fail_after_effect("chat.postMessage", "hang")
    impatient = AsyncWebClient(token=TOKEN, base_url=fake.api_url, timeout=1, retry_handlers=[])
    with pytest.raises(TimeoutError):
        await impatient.chat_postMessage(channel="C0123456789", text="took effect")
    assert len(fake.messages("C0123456789")) == 1


async def test_a_response_url_can_fail(fake: FakeSlack) -> None:
    fake.fail_response_url("k", 503)
    async with aiohttp.ClientSession() as session, session.post(fake.response_url("k"), json={"text": "x"}) as r:
        assert r.status == 503
    async with aiohttp.ClientSession() as session, session.post(fake.response_url("k"), json={"text": "y"}) as r:
        assert r.status == 200
    assert [post.body["text"] for post in fake.response_url_posts] == ["x", "y"]


async def test_a_persons_file_is_described_by_files_info_and_downloaded_only_with_the_bot_token(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    file = fake.files.add_file("chart.png", "image/png", b"\x89PNG-chart")
    info = await client.files_info(file=file["id"])
    assert (info["file"]["mimetype"], info["file"]["size"]) == ("image/png", 10)
    url = info["file"]["url_private"]
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=_auth()) as response:
            assert (response.status, response.content_type) == (200, "image/png")
            assert await response.read() == b"\x89PNG-chart"
        async with session.get(url) as anonymous:  # Slack answers a sign-in page, not an error
            assert (anonymous.status, anonymous.content_type) == (200, "text/html")
    with pytest.raises(SlackApiError) as caught:
        await client.files_info(file="F404")
    assert caught.value.response["error"] == "file_not_found"
