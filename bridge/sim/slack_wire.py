"""The wire format of the Slack stand-in: how arguments arrive, what a message may hold, how lists page.

Arguments come as query, form or JSON, with JSON-in-form fields decoded as
Slack does; message content is checked against Slack's limits (Block Kit
through slack-sdk's own models); history and replies page by cursor.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from aiohttp import web
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from .slack_errors import SlackError

Args = dict[str, Any]
_JSON_ARGS = ("blocks", "attachments", "metadata", "files")


def truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def page(messages: list[Args], args: Args) -> Args:
    start = int(args.get("cursor") or 0)
    limit = int(args.get("limit") or 100)
    chunk = messages[start : start + limit]
    if not truthy(args.get("include_all_metadata")):
        chunk = [{k: v for k, v in m.items() if k != "metadata"} for m in chunk]
    more = start + limit < len(messages)
    return {
        "ok": True,
        "messages": [dict(m) for m in chunk],
        "has_more": more,
        "response_metadata": {"next_cursor": str(start + limit) if more else ""},
    }


def content(args: Args, *, required: bool) -> Args:
    """The text/blocks/metadata of a message, checked against Slack's limits."""
    fields = {k: args[k] for k in ("text", "blocks", "attachments", "metadata") if args.get(k) is not None}
    if required and not (fields.get("text") or fields.get("blocks") or fields.get("attachments")):
        raise SlackError("no_text")
    if len(str(fields.get("text") or "")) > 40000:
        raise SlackError("msg_too_long")
    if "blocks" in fields:
        check_blocks(fields["blocks"])
    metadata = fields.get("metadata")
    if metadata is not None and not (isinstance(metadata, dict) and {"event_type", "event_payload"} <= metadata.keys()):
        raise SlackError("invalid_metadata_format")
    return fields


def check_blocks(blocks: Any) -> None:
    # slack-sdk's own models know Block Kit's limits; a block they reject, Slack rejects too.
    if not isinstance(blocks, list):
        raise SlackError("invalid_blocks_format")
    if len(blocks) > 50:
        raise SlackError("invalid_blocks")
    for raw in blocks:
        try:
            block = Block.parse(raw)
            if block is None:
                raise SlackError("invalid_blocks")
            block.to_dict()
        except (SlackObjectFormationError, KeyError, TypeError, AttributeError):
            raise SlackError("invalid_blocks") from None


async def read_args(request: web.Request) -> Args:
    """Query, form and JSON arguments merged, with JSON-in-form fields decoded like Slack does."""
    args: Args = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            args.update(body if isinstance(body, dict) else {})
        else:
            args.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    for key in _JSON_ARGS:
        if isinstance(args.get(key), str):
            # Undecodable JSON stays text, and the block check answers invalid_blocks_format.
            with contextlib.suppress(json.JSONDecodeError):
                args[key] = json.loads(args[key])
    return args
