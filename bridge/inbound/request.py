"""One neutral Slack request, whichever way it arrived (HTTP or Socket Mode).

The transports only convert; everything after this point (dedupe, filtering,
acting) sees a ``SlackRequest`` and never knows which door it came through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs

from slack_sdk.socket_mode.request import SocketModeRequest

RequestKind = Literal["url_verification", "event_callback", "block_actions", "other"]
Transport = Literal["http", "socket"]
JSONDict = dict[str, Any]


class MalformedRequest(ValueError):
    """The body is not something Slack sends; answered with 400, never acted on."""


@dataclass(frozen=True)
class SlackRequest:
    kind: RequestKind
    body: JSONDict  # the Events API envelope, or the interaction payload
    transport: Transport

    @property
    def event(self) -> JSONDict:
        event = self.body.get("event")
        return event if isinstance(event, dict) else {}


def _json_object(text: str | bytes, what: str) -> JSONDict:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedRequest(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise MalformedRequest(f"{what} must be a JSON object")
    return value


def _form_payload(body: bytes) -> JSONDict:
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise MalformedRequest("form body is not valid application/x-www-form-urlencoded") from None
    payloads = fields.get("payload")
    if not payloads or len(payloads) != 1:
        raise MalformedRequest("form body must carry exactly one payload field")
    return _json_object(payloads[0], "the payload field")


def _classify_event_body(body: JSONDict, transport: Transport) -> SlackRequest:
    kind = body.get("type")
    if kind == "url_verification":
        if not isinstance(body.get("challenge"), str):
            raise MalformedRequest("url_verification without a challenge string")
        return SlackRequest("url_verification", body, transport)
    if kind == "event_callback":
        if not isinstance(body.get("event_id"), str) or not body["event_id"]:
            raise MalformedRequest("event_callback without an event_id")
        if not isinstance(body.get("event"), dict):
            raise MalformedRequest("event_callback without an event object")
        return SlackRequest("event_callback", body, transport)
    return SlackRequest("other", body, transport)


def _classify_interaction(payload: JSONDict, transport: Transport) -> SlackRequest:
    if payload.get("type") != "block_actions":
        return SlackRequest("other", payload, transport)
    actions = payload.get("actions")
    if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
        raise MalformedRequest("block_actions without a list of actions")
    if not isinstance(payload.get("user"), dict):
        raise MalformedRequest("block_actions without a user")
    return SlackRequest("block_actions", payload, transport)


def parse_http(body: bytes, content_type: str) -> SlackRequest:
    """An Events API JSON body or an interactivity form, as Slack POSTs them."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        return _classify_interaction(_form_payload(body), "http")
    if media == "application/json":
        return _classify_event_body(_json_object(body, "the body"), "http")
    raise MalformedRequest("content type must be application/json or application/x-www-form-urlencoded")


def parse_socket(envelope: SocketModeRequest) -> SlackRequest:
    """A Socket Mode envelope's payload: the same bodies as over HTTP."""
    payload = envelope.payload
    if not isinstance(payload, dict):
        raise MalformedRequest("envelope payload must be a JSON object")
    if envelope.type == "events_api":
        return _classify_event_body(payload, "socket")
    if envelope.type == "interactive":
        return _classify_interaction(payload, "socket")
    return SlackRequest("other", payload, "socket")
