"""The webhook notifier: the contract's body, Standard Webhooks signatures, and error classes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import aiohttp
import pytest

from bridge.diff import diff_run
from bridge.notifiers.webhook import RunText, WebhookNotifier, classify, encode_body, parse_retry_after
from bridge.settings import WebhookTarget
from tests.conftest import make_run, pr_artifact
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.test_diff import NOW, START

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def target(url: str, secret: str | None = SECRET) -> WebhookTarget:
    return WebhookTarget.model_validate({"type": "webhook", "url": url, "secret": secret, "timeout": 2})


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "done"), (204, "done"), (408, "retry"), (409, "retry"), (425, "retry"), (429, "retry"),
     (500, "retry"), (503, "retry"), (400, "permanent"), (401, "permanent"), (404, "permanent"),
     (410, "permanent"), (301, "permanent")],
)  # fmt: skip
def test_status_classes(status: int, outcome: str) -> None:
    assert classify(status, None).status == outcome


def test_retry_after_as_seconds_or_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("30", now) == 30
    assert parse_retry_after("Thu, 01 Jan 2026 00:02:00 GMT", now) == 120
    assert parse_retry_after("soon", now) is None


async def test_body_is_the_contract_payload_and_signature_verifies() -> None:
    event = diff_run(None, make_run(state="FAILED", status_message={"message": "boom"}), START, NOW)[1]
    async with WebhookReceiver(secret=SECRET) as receiver, aiohttp.ClientSession() as session:
        outcome = await WebhookNotifier(target(receiver.url), session).send(event)
    assert outcome.status == "done"
    [request] = receiver.requests
    assert request.signature_valid is True
    assert request.headers["webhook-id"] == event.id
    assert request.body == {
        "id": event.id,
        "type": "run.failed",
        "created_at": NOW,
        "run": event.run,
        "previous_state": None,
        "artifact": None,
    }


async def test_each_attempt_is_signed_afresh_with_the_same_id() -> None:
    event = diff_run(None, make_run(), START, NOW)[0]
    async with WebhookReceiver(secret=SECRET, script=[503]) as receiver, aiohttp.ClientSession() as session:
        notifier = WebhookNotifier(target(receiver.url), session)
        assert (await notifier.send(event)).status == "retry"
        assert (await notifier.send(event)).status == "done"
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event.id
    assert first.signature_valid and second.signature_valid


async def test_retry_after_from_the_receiver_is_passed_on() -> None:
    event = diff_run(None, make_run(), START, NOW)[0]
    async with WebhookReceiver(script=[429], retry_after="7") as receiver, aiohttp.ClientSession() as session:
        outcome = await WebhookNotifier(target(receiver.url, None), session).send(event)
    assert (outcome.status, outcome.retry_after) == ("retry", 7.0)
    assert "webhook-signature" not in receiver.requests[0].headers


async def test_unreachable_receiver_is_retryable_and_the_error_leaks_no_url() -> None:
    event = diff_run(None, make_run(), START, NOW)[0]
    url = "http://127.0.0.1:9/hook?token=sekrit-in-url"
    async with aiohttp.ClientSession() as session:
        outcome = await WebhookNotifier(target(url), session).send(event)
    assert outcome.status == "retry"
    assert "sekrit" not in outcome.detail and "127.0.0.1" not in outcome.detail


def test_the_body_is_the_compact_json_of_the_payload_whatever_the_run_text_cache_holds() -> None:
    run = make_run(
        state="INPROGRESS", title='Ünïcode "quoted"', artifacts=[pr_artifact(f"https://x/{n}") for n in range(3)]
    )
    events = diff_run(None, run, START, NOW)
    runs = RunText(max_entries=1)
    for event in events + events:  # the second round reads the run's text from the cache
        assert encode_body(event, runs) == json.dumps(event.to_payload(), separators=(",", ":"), ensure_ascii=False)
    other = diff_run(None, make_run("other", state="FAILED"), START, NOW)[0]
    assert json.loads(encode_body(other, runs))["run"]["run_id"] == "other"  # another object, its own text
