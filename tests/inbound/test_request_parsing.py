"""The neutral request: what the HTTP and Socket Mode adapters turn Slack's bodies into.

Only the fields the bridge reads survive, each checked for its type: a body that is
not JSON (or not a form) is malformed (400), a JSON object with a field of the wrong
type or shape is an ``UnusableRequest`` naming that field (acknowledged, counted).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.socket_mode.request import SocketModeRequest

from bridge.inbound.request import (
    ButtonClick,
    MalformedRequest,
    OtherRequest,
    SlackMessage,
    UnusableRequest,
    UrlVerification,
    parse_http,
    parse_socket,
)

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
REPLY = {"type": "message", "channel": "C1", "user": "U1", "ts": "2.000200", "thread_ts": "1.000100", "text": "hi"}


def event(body_event: Any, event_id: Any = "Ev1") -> bytes:
    return json.dumps({"type": "event_callback", "event_id": event_id, "event": body_event}).encode()


def form(payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def click_payload(**change: Any) -> dict[str, Any]:
    payload = {
        "type": "block_actions",
        "trigger_id": "111.222.abc",
        "user": {"id": "U1", "name": "someone"},
        "container": {"type": "message", "channel_id": "C1", "message_ts": "1.000100"},
        "response_url": "https://hooks.slack.com/actions/T1/1/x",
        "actions": [{"action_id": "oz_cancel_run", "value": "run-1", "action_ts": "3.0"}],
    }
    return {**payload, **change}


def test_a_message_event_keeps_only_the_fields_the_bridge_reads() -> None:
    request = parse_http(event({**REPLY, "blocks": [], "team": "T1"}), "application/json; charset=utf-8")
    assert request == SlackMessage("Ev1", "message", None, "C1", None, "U1", "2.000200", "1.000100", "hi", False)


def test_files_attached_to_a_message_are_kept_by_id_only() -> None:
    files = [{"id": f"F{n}", "url_private": "https://evil.example/steal", "mimetype": "image/png"} for n in range(12)]
    request = parse_http(event({**REPLY, "files": files}), JSON)
    assert isinstance(request, SlackMessage)
    assert request.file_ids == tuple(f"F{n}" for n in range(10))  # what a URL in the request says is never read
    assert SlackMessage.from_json(request.to_json()) == request


def test_url_verification_needs_a_challenge_string() -> None:
    assert parse_http(b'{"type": "url_verification", "challenge": "abc"}', JSON) == UrlVerification("abc")
    assert isinstance(parse_http(b'{"type": "url_verification"}', JSON), UnusableRequest)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe", b""])
def test_bodies_that_are_not_json_objects_are_malformed(body: bytes) -> None:
    with pytest.raises(MalformedRequest):
        parse_http(body, JSON)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"type": ["event_callback"]}', "type is a list, not a string"),
        (b'{"type": {"a": 1}}', "type is an object, not a string"),
        (b'{"type": "event_callback", "event": {}}', "without an event_id"),
        (event("not an object"), "event is a string, not an object"),
        (event({"type": ["message"]}), "event.type is a list"),
        (event({**REPLY, "subtype": {"x": 1}}), "event.subtype is an object"),
        (event({**REPLY, "subtype": ["thread_broadcast"]}), "event.subtype is a list"),
        (event({**REPLY, "channel": 42}), "event.channel is a number"),
        (event({**REPLY, "user": True}), "event.user is a boolean"),
        (event({**REPLY, "thread_ts": 1.0001}), "event.thread_ts is a number"),
        (event({**REPLY, "thread_ts": "yesterday"}), "event.thread_ts is not a Slack message timestamp"),
        (event({**REPLY, "text": ["hi"]}), "event.text is a list"),
        (event({**REPLY, "channel": "C1 OR 1=1"}), "event.channel is not a Slack id"),
        (event({**REPLY, "channel": "C" * 200}), "event.channel is not a Slack id"),
        (event({**REPLY, "files": "F1"}), "event.files is not a list of objects"),
        (event({**REPLY, "files": [{"id": ["F1"]}]}), "event.files[0].id is a list"),
        (event(REPLY, event_id=["Ev1"]), "event_id is a list"),
        (event(REPLY, event_id="Ev\u00e91"), "event_id is not a Slack id"),
    ],
)
def test_signed_json_with_fields_of_the_wrong_type_is_unusable_with_the_reason(body: bytes, reason: str) -> None:
    request = parse_http(body, JSON)
    assert isinstance(request, UnusableRequest), request
    assert reason in request.reason


def test_text_that_no_database_could_store_is_cleaned_not_refused() -> None:
    body = json.dumps({"type": "event_callback", "event_id": "Ev1", "event": {**REPLY, "text": "a\ud800b\x00c"}})
    request = parse_http(body.encode(), JSON)
    assert isinstance(request, SlackMessage) and request.text == "a\ufffdb\ufffdc"


def test_a_button_click_is_its_first_action_and_where_it_was_clicked() -> None:
    request = parse_http(form(click_payload()), FORM)
    assert request == ButtonClick(
        click_id="111.222.abc",
        action_id="oz_cancel_run",
        value="run-1",
        user="U1",
        channel="C1",
        message_ts="1.000100",
        response_url="https://hooks.slack.com/actions/T1/1/x",
    )


def test_a_click_without_container_falls_back_to_channel_and_message() -> None:
    payload = click_payload(container=None, channel={"id": "C2"}, message={"ts": "5.000001"}, trigger_id=None)
    request = parse_http(form(payload), FORM)
    assert isinstance(request, ButtonClick)
    assert (request.channel, request.message_ts, request.click_id) == ("C2", "5.000001", "U1:3.0")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"actions": "no"}, "actions is not a list of objects"),
        ({"actions": [1]}, "actions is not a list of objects"),
        ({"actions": [{"action_id": ["x"]}]}, "actions[0].action_id is a list"),
        ({"actions": [{"value": "v"}]}, "actions[0].action_id is missing"),
        ({"user": "U1"}, "user is a string, not an object"),
        ({"user": {"id": {"x": 1}}}, "user.id is an object"),
        ({"container": {"channel_id": "C1", "message_ts": ["1.0"]}}, "container.message_ts is a list"),
        ({"response_url": 7}, "response_url is a number"),
        ({"actions": [{"action_id": "oz_cancel_run", "value": "v" * 3000}]}, "longer than 2000"),
    ],
)
def test_clicks_with_fields_of_the_wrong_type_are_unusable(change: dict[str, Any], reason: str) -> None:
    request = parse_http(form(click_payload(**change)), FORM)
    assert isinstance(request, UnusableRequest) and reason in request.reason, request


@pytest.mark.parametrize(
    "body",
    [
        b"payload=%7Bnot-json",
        b"command=/oz&text=hi",
        b"payload=1&payload=2",
        b"%%%",
    ],
)
def test_malformed_forms_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedRequest):
        parse_http(body, FORM)


def test_other_interactions_and_event_types_are_other_requests() -> None:
    assert parse_http(form({"type": "view_submission"}), FORM) == OtherRequest("interaction view_submission")
    assert parse_http(b'{"type": "app_rate_limited"}', JSON) == OtherRequest("app_rate_limited")
    assert parse_http(event({"type": "reaction_added", "item": ["anything"]}), JSON) == OtherRequest(
        "event reaction_added"
    )


def test_an_unknown_content_type_is_refused() -> None:
    with pytest.raises(MalformedRequest):
        parse_http(b"{}", "text/plain")


def test_socket_envelopes_carry_the_same_bodies() -> None:
    body = {"type": "event_callback", "event_id": "Ev1", "event": {**REPLY, "type": "app_mention"}}
    events = parse_socket(SocketModeRequest("events_api", "env-1", body))
    assert isinstance(events, SlackMessage) and events.event_type == "app_mention"
    assert isinstance(parse_socket(SocketModeRequest("interactive", "env-2", click_payload())), ButtonClick)
    bad = {"type": "event_callback", "event_id": "Ev2", "event": {"type": {"x": 1}}}
    assert isinstance(parse_socket(SocketModeRequest("events_api", "env-3", bad)), UnusableRequest)
    assert parse_socket(SocketModeRequest("slash_commands", "env-4", {"command": "/oz"})) == OtherRequest(
        "socket slash_commands"
    )


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
FIELDS = ["type", "subtype", "channel", "channel_type", "user", "ts", "thread_ts", "text", "bot_id", "bot_profile"]


@given(st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES), JSON_VALUES)
def test_any_json_becomes_a_typed_request_and_never_raises(fields: dict[str, Any], event_id: Any) -> None:
    request = parse_http(event({"type": "message", **fields}, event_id), JSON)
    if isinstance(request, SlackMessage):
        for name in ("event_id", "event_type", "text"):
            assert isinstance(getattr(request, name), str)
        for name in ("subtype", "channel", "channel_type", "user", "ts", "thread_ts"):
            assert getattr(request, name) is None or isinstance(getattr(request, name), str)
        assert isinstance(request.from_bot, bool)
    else:
        assert isinstance(request, UnusableRequest | OtherRequest)
