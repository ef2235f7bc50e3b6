"""``POST /slack/events``: verification, size limit, parsing, url_verification, fast answers."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
import time
import zlib
from collections.abc import AsyncIterator

import pytest

from bridge.logs import configure
from bridge.store import inbox
from tests.inbound.harness import BOT_TOKEN, SIGNING_SECRET, Harness, HarnessFactory, event_body, sign
from tests.inbound.test_events_fuzz import sign as raw_sign

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


async def test_a_bad_signature_is_refused_with_401(harness: Harness) -> None:
    body = json.dumps(event_body({"type": "message"})).encode()
    forged = sign(body, secret="not-the-secret")
    response = await harness.client.post("/slack/events", data=body, headers={"Content-Type": JSON, **forged})
    assert response.status == 401
    assert SIGNING_SECRET not in await response.text()


async def test_a_stale_timestamp_is_refused_with_401(harness: Harness) -> None:
    body = json.dumps(event_body({"type": "message"})).encode()
    stale = sign(body, timestamp=int(time.time()) - 6 * 60)
    response = await harness.client.post("/slack/events", data=body, headers={"Content-Type": JSON, **stale})
    assert response.status == 401


async def test_missing_signature_headers_are_refused_before_parsing(harness: Harness) -> None:
    response = await harness.client.post("/slack/events", data=b"{not json", headers={"Content-Type": JSON})
    assert response.status == 401


async def test_url_verification_answers_the_challenge(harness: Harness) -> None:
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    body = json.dumps({"type": "url_verification", "token": "t", "challenge": challenge})
    response = await harness.post(body.encode(), JSON)
    assert response.status == 200
    assert (await response.json())["challenge"] == challenge


async def test_a_body_over_one_mebibyte_is_refused_with_413(harness: Harness) -> None:
    body = b'{"type": "event_callback", "pad": "' + b"x" * (1024 * 1024) + b'"}'
    headers = {"Content-Type": JSON, **sign(body)}
    response = await harness.client.post("/slack/events", data=io.BytesIO(body), headers=headers)
    assert response.status == 413


async def test_a_chunked_body_over_one_mebibyte_is_refused_with_413(harness: Harness) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(17):
            yield b"x" * 65536

    headers = {"Content-Type": JSON, **sign(b"")}
    response = await harness.client.post("/slack/events", data=chunks(), headers=headers)
    assert response.status == 413


async def test_bodies_that_are_not_json_objects_or_forms_are_refused_with_400(harness: Harness) -> None:
    assert (await harness.post(b"{not json", JSON)).status == 400
    assert (await harness.post(b'["a list"]', JSON)).status == 400
    assert (await harness.post(b"payload=%7Bbroken", FORM)).status == 400
    assert (await harness.post(b"no-payload-here=1", FORM)).status == 400


@pytest.mark.parametrize(
    "body",
    [
        {"type": "event_callback"},
        {"type": ["event_callback"]},
        {"type": "event_callback", "event_id": "Ev1", "event": {"type": ["message"]}},
        {"type": "event_callback", "event_id": "Ev2", "event": {"type": "message", "subtype": {"x": 1}}},
        {"type": "event_callback", "event_id": "Ev3", "event": {"type": "message", "thread_ts": 1.5}},
        {"type": "event_callback", "event_id": {"id": 1}, "event": {"type": "message"}},
        {"type": "url_verification", "challenge": ["c"]},
    ],
)
async def test_signed_json_of_the_wrong_shape_is_acknowledged_counted_and_never_stored(
    harness: Harness, body: dict[str, object]
) -> None:
    # A 4xx or 5xx would only make Slack send the same body again, for ever.
    response = await harness.post(json.dumps(body).encode(), JSON)
    assert response.status == 200
    kind = body["type"] if isinstance(body["type"], str) else "unknown"
    assert harness.metrics.slack_inbound.labels(kind, "unusable")._value.get() == 1
    async with harness.engine.connect() as conn:
        assert await inbox.all_rows(conn) == []


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd", "x-unknown", "gzip, identity"])
async def test_a_content_encoding_is_refused_with_415_after_the_signature_over_the_bytes_received(
    harness: Harness, coding: str
) -> None:
    body = json.dumps(event_body({"type": "message"})).encode()
    headers = {"Content-Type": JSON, "Content-Encoding": coding}
    unsigned = await harness.client.post("/slack/events", data=body, headers=headers)
    signed = await harness.client.post("/slack/events", data=body, headers={**headers, **sign(body)})
    assert unsigned.status == 401
    assert signed.status == 415 and signed.headers["Accept-Encoding"] == "identity"
    for compressed in (gzip.compress(body), zlib.compress(body)):
        # Signed over the compressed bytes, or over the body before compression: neither is Slack's.
        for signature in (raw_sign(compressed), sign(body)):
            response = await harness.client.post("/slack/events", data=compressed, headers={**headers, **signature})
            assert response.status == 401


async def test_identity_coding_is_no_coding(harness: Harness) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "c"}).encode()
    response = await harness.post(body, JSON, headers={"Content-Encoding": "identity"})
    assert response.status == 200


async def test_without_a_signing_secret_the_route_answers_404(make_harness: HarnessFactory) -> None:
    harness = await make_harness(signing_secret=None)
    body = json.dumps({"type": "url_verification", "challenge": "c"}).encode()
    assert (await harness.post(body, JSON)).status == 404


async def test_the_answer_comes_before_the_work(make_harness: HarnessFactory) -> None:
    harness = await make_harness(start=True)
    thread = await harness.thread()
    harness.sim.inject_fault(latency=2.0, path=f"/api/v1/agent/runs/{thread.run_id}/followups")

    started = time.monotonic()
    response = await harness.post_event(harness.reply(thread, "take your time"))
    answered = time.monotonic() - started

    assert response.status == 200 and answered < 1.0
    for _ in range(100):
        if harness.sim.followups():
            break
        await asyncio.sleep(0.05)
    assert [f.message for f in harness.sim.followups(thread.run_id)] == ["take your time"]


async def test_no_secret_reaches_the_logs(make_harness: HarnessFactory) -> None:
    # The redactor is not told the signing secret here: nothing may log it in the first place.
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure("json", "debug", stream=stream)
    try:
        harness = await make_harness()
        thread = await harness.thread()
        body = json.dumps(event_body(harness.reply(thread, "hi"))).encode()
        forged = sign(body, secret="x")
        await harness.client.post("/slack/events", data=body, headers={"Content-Type": JSON, **forged})
        await harness.post(b"{broken", JSON)
        await harness.post_event(harness.reply(thread, "hi"))
        await harness.settle()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    logged = stream.getvalue()
    assert "inbox row done" in logged
    assert SIGNING_SECRET not in logged and BOT_TOKEN not in logged


async def test_malformed_http_is_a_400_and_a_warning_not_an_error_with_a_traceback(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps(event_body({"type": "message"})).encode()
    signature = "".join(f"{k}: {v}\r\n" for k, v in sign(body).items()).encode()
    raw = (
        b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + signature
        + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + body + b"\r\n0\r\n\r\n"
    )  # fmt: skip
    reader, writer = await asyncio.open_connection(harness.client.host, harness.client.port)
    with caplog.at_level(logging.DEBUG):
        writer.write(raw)
        status_line = await reader.readline()
        writer.close()
        await asyncio.sleep(0.05)
    assert status_line.split()[1] == b"400"
    server = [record for record in caplog.records if record.name.startswith("aiohttp.server")]
    assert server and all(r.levelno == logging.WARNING and r.exc_info is None for r in server)
