"""The neutral request: what the HTTP and Socket Mode adapters turn Slack's bodies into."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from slack_sdk.socket_mode.request import SocketModeRequest

from bridge.inbound.request import MalformedRequest, parse_http, parse_socket

FORM = "application/x-www-form-urlencoded"


def test_an_event_callback_is_recognised() -> None:
    body = {"type": "event_callback", "event_id": "Ev1", "event": {"type": "message"}}
    request = parse_http(json.dumps(body).encode(), "application/json; charset=utf-8")
    assert request.kind == "event_callback" and request.event == {"type": "message"}


def test_url_verification_needs_a_challenge_string() -> None:
    assert parse_http(b'{"type": "url_verification", "challenge": "abc"}', "application/json").kind == (
        "url_verification"
    )
    with pytest.raises(MalformedRequest):
        parse_http(b'{"type": "url_verification"}', "application/json")


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe", b'{"type": "event_callback", "event": {}}', b""],
)
def test_malformed_json_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedRequest):
        parse_http(body, "application/json")


def test_an_interaction_form_carries_its_payload() -> None:
    payload = {"type": "block_actions", "user": {"id": "U1"}, "actions": [{"action_id": "x"}]}
    request = parse_http(urlencode({"payload": json.dumps(payload)}).encode(), FORM)
    assert request.kind == "block_actions" and request.body == payload


@pytest.mark.parametrize(
    "body",
    [
        b"payload=%7Bnot-json",
        b"command=/oz&text=hi",
        b"payload=1&payload=2",
        b"%%%",
        urlencode({"payload": json.dumps({"type": "block_actions", "actions": "no"})}).encode(),
    ],
)
def test_malformed_forms_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedRequest):
        parse_http(body, FORM)


def test_other_interactions_and_event_types_are_recognised_as_other() -> None:
    view = urlencode({"payload": json.dumps({"type": "view_submission"})}).encode()
    assert parse_http(view, FORM).kind == "other"
    assert parse_http(b'{"type": "app_rate_limited"}', "application/json").kind == "other"


def test_an_unknown_content_type_is_refused() -> None:
    with pytest.raises(MalformedRequest):
        parse_http(b"{}", "text/plain")


def test_socket_envelopes_carry_the_same_bodies() -> None:
    body = {"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention"}}
    events = SocketModeRequest("events_api", "env-1", body)
    assert parse_socket(events).kind == "event_callback"
    payload = {"type": "block_actions", "user": {"id": "U1"}, "actions": []}
    assert parse_socket(SocketModeRequest("interactive", "env-2", payload)).kind == "block_actions"
    assert parse_socket(SocketModeRequest("slash_commands", "env-3", {"command": "/oz"})).kind == "other"
