"""One neutral Slack request, whichever way it arrived (HTTP or Socket Mode).

The transports only convert; everything after this point (filtering, dedupe,
acting) sees one of the small typed requests below and never the JSON Slack
sent. Only the fields the bridge reads are kept, each checked for its type
(``bridge.inbound.fields``): a body that is not JSON or not a form is
``MalformedRequest`` (HTTP 400); a JSON object whose fields the bridge cannot
use becomes an ``UnusableRequest`` with the reason, acknowledged and counted,
so nothing downstream can meet an unexpected type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.socket_mode.request import SocketModeRequest

from bridge.inbound import fields
from bridge.inbound.fields import Unusable

JSONDict = dict[str, Any]
MESSAGE_EVENT_TYPES = frozenset({"message", "app_mention"})
FILES_READ = 10  # files of one message the bridge looks at; a run takes at most 5 images


class MalformedRequest(ValueError):
    """The body is not something Slack sends at all; answered with 400, never acted on."""


@dataclass(frozen=True)
class UrlVerification:
    challenge: str
    kind = "url_verification"


@dataclass(frozen=True)
class SlackMessage:
    """A ``message`` or ``app_mention`` event: only what the bridge reads, typed."""

    event_id: str
    event_type: str
    subtype: str | None
    channel: str | None
    channel_type: str | None
    user: str | None
    ts: str | None
    thread_ts: str | None
    text: str
    from_bot: bool  # bot_id or bot_profile: another app's message, or the bridge's own
    file_ids: tuple[str, ...] = ()  # files attached to the message (their details are asked of Slack)
    kind = "event_callback"

    def to_json(self) -> JSONDict:
        # Flat fields only: a plain dict is much cheaper than dataclasses.asdict's deep copy.
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["file_ids"] = list(self.file_ids)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SlackMessage:
        values: dict[str, Any] = {name: data.get(name) for name in cls.__dataclass_fields__}
        files = values.get("file_ids")
        values["file_ids"] = tuple(str(f) for f in files) if isinstance(files, list) else ()
        return cls(**values)


@dataclass(frozen=True)
class ButtonClick:
    """A ``block_actions`` click: the first action, who clicked, on which message."""

    click_id: str  # trigger_id, else user:action_ts; Socket Mode may deliver a click twice
    action_id: str
    value: str | None
    user: str | None
    channel: str | None
    message_ts: str | None
    response_url: str | None
    kind = "block_actions"

    def to_json(self) -> JSONDict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ButtonClick:
        values: dict[str, Any] = {name: data.get(name) for name in cls.__dataclass_fields__}
        return cls(**values)


@dataclass(frozen=True)
class OtherRequest:
    """Well-formed, but nothing the bridge acts on (another event type, a view submission …)."""

    what: str
    kind = "other"


@dataclass(frozen=True)
class UnusableRequest:
    """Claims to be something the bridge handles, but a field it reads has the wrong type or shape."""

    kind: str
    reason: str


SlackRequest = UrlVerification | SlackMessage | ButtonClick | OtherRequest | UnusableRequest


# ---- typed readers ---------------------------------------------------------------------------------


def message_of(event_id: str, event: Mapping[str, Any]) -> SlackMessage | OtherRequest:
    """The typed message event; raises ``Unusable`` when a field the bridge reads is wrong."""
    event_type = fields.ident(event, "type", "event.")
    if event_type is None:
        raise Unusable("event.type is missing")
    if event_type not in MESSAGE_EVENT_TYPES:
        return OtherRequest(f"event {event_type}")
    return SlackMessage(
        event_id=event_id,
        event_type=event_type,
        subtype=fields.ident(event, "subtype", "event."),
        channel=fields.ident(event, "channel", "event."),
        channel_type=fields.ident(event, "channel_type", "event."),
        user=fields.ident(event, "user", "event."),
        ts=fields.timestamp(event, "ts", "event."),
        thread_ts=fields.timestamp(event, "thread_ts", "event."),
        text=fields.text(event, "text", "event.") or "",
        from_bot=fields.present(event, "bot_id") or fields.present(event, "bot_profile"),
        file_ids=_file_ids(event),
    )


def _file_ids(event: Mapping[str, Any]) -> tuple[str, ...]:
    found = []
    for index, item in enumerate(fields.objects(event, "files", "event.")[:FILES_READ]):
        file_id = fields.ident(item, "id", f"event.files[{index}].")
        if file_id is not None:
            found.append(file_id)
    return tuple(found)


def _event_callback(body: Mapping[str, Any]) -> SlackMessage | OtherRequest:
    event_id = fields.ident(body, "event_id")
    event = fields.obj(body, "event")
    if event_id is None or event is None:
        raise Unusable("event_callback without an event_id and an event object")
    return message_of(event_id, event)


def click_of(payload: Mapping[str, Any]) -> ButtonClick | OtherRequest:
    actions = fields.objects(payload, "actions")
    if not actions:
        return OtherRequest("block_actions without actions")
    action = actions[0]  # Slack sends one action per click
    action_id = fields.ident(action, "action_id", "actions[0].")
    if action_id is None:
        raise Unusable("actions[0].action_id is missing")
    user = fields.ident(fields.obj(payload, "user") or {}, "id", "user.")
    container = fields.obj(payload, "container") or {}
    channel = fields.ident(container, "channel_id", "container.") or fields.ident(
        fields.obj(payload, "channel") or {}, "id", "channel."
    )
    message_ts = fields.timestamp(container, "message_ts", "container.") or fields.timestamp(
        fields.obj(payload, "message") or {}, "ts", "message."
    )
    trigger = fields.ident(payload, "trigger_id")
    action_ts = fields.ident(action, "action_ts", "actions[0].")
    return ButtonClick(
        click_id=trigger or f"{user}:{action_ts}",
        action_id=action_id,
        value=fields.text(action, "value", "actions[0].", limit=fields.VALUE_LIMIT),
        user=user,
        channel=channel,
        message_ts=message_ts,
        response_url=fields.text(payload, "response_url", limit=fields.URL_LIMIT),
    )


def _guarded(kind: str, read: Any, body: Mapping[str, Any]) -> SlackRequest:
    try:
        request: SlackRequest = read(body)
    except Unusable as exc:
        return UnusableRequest(kind, str(exc))
    return request


def _event_body(body: Mapping[str, Any]) -> SlackRequest:
    try:
        kind = fields.ident(body, "type")
    except Unusable as exc:
        return UnusableRequest("unknown", str(exc))
    if kind == "url_verification":
        try:
            challenge = fields.text(body, "challenge", limit=1000)
        except Unusable as exc:
            return UnusableRequest(kind, str(exc))
        return UrlVerification(challenge) if challenge else UnusableRequest(kind, "no challenge")
    if kind == "event_callback":
        return _guarded(kind, _event_callback, body)
    return OtherRequest(str(kind))


def _interaction(payload: Mapping[str, Any]) -> SlackRequest:
    try:
        kind = fields.ident(payload, "type")
    except Unusable as exc:
        return UnusableRequest("unknown", str(exc))
    if kind == "block_actions":
        return _guarded(kind, click_of, payload)
    return OtherRequest(f"interaction {kind}")


# ---- transports ------------------------------------------------------------------------------------


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
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise MalformedRequest("form body is not valid application/x-www-form-urlencoded") from None
    payloads = form.get("payload")
    if not payloads or len(payloads) != 1:
        raise MalformedRequest("form body must carry exactly one payload field")
    return _json_object(payloads[0], "the payload field")


def parse_http(body: bytes, content_type: str) -> SlackRequest:
    """An Events API JSON body or an interactivity form, as Slack POSTs them."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        return _interaction(_form_payload(body))
    if media == "application/json":
        return _event_body(_json_object(body, "the body"))
    raise MalformedRequest("content type must be application/json or application/x-www-form-urlencoded")


def parse_socket(envelope: SocketModeRequest) -> SlackRequest:
    """A Socket Mode envelope's payload: the same bodies as over HTTP."""
    payload = envelope.payload
    if not isinstance(payload, dict):
        raise MalformedRequest("envelope payload must be a JSON object")
    if envelope.type == "events_api":
        return _event_body(payload)
    if envelope.type == "interactive":
        return _interaction(payload)
    return OtherRequest(f"socket {envelope.type}")
