"""``POST /slack/events``: verification, size limit, parsing, url_verification, fast answers."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import AsyncIterator

from bridge.logs import configure
from tests.inbound.harness import BOT_TOKEN, SIGNING_SECRET, Harness, HarnessFactory, event_body, sign

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


async def test_malformed_json_and_forms_are_refused_with_400(harness: Harness) -> None:
    assert (await harness.post(b"{not json", JSON)).status == 400
    assert (await harness.post(b'["a list"]', JSON)).status == 400
    assert (await harness.post(b'{"type": "event_callback"}', JSON)).status == 400
    assert (await harness.post(b"payload=%7Bbroken", FORM)).status == 400
    assert (await harness.post(b"no-payload-here=1", FORM)).status == 400


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
