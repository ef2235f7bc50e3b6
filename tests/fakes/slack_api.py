"""A fake Slack Web API on a real aiohttp server, for every Slack test.

``AsyncWebClient(token=..., base_url=fake.api_url)`` talks to it unchanged:
methods are served at ``/api/<method>`` with query, form or JSON arguments,
and answer like Slack does (HTTP 200 with ``ok: false`` for API errors, 429
with ``Retry-After`` when rate limited). Socket Mode is served too:
``apps.connections.open`` hands out a ``ws://`` URL on the same server.

    async with FakeSlack(token="xoxb-test") as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url)
        await client.chat_postMessage(channel="#alerts", text="hi")
        assert fake.calls_to("chat.postMessage")[0].args["text"] == "hi"
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

Args = dict[str, Any]
_JSON_ARGS = ("blocks", "attachments", "metadata")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class SlackCall:
    method: str
    args: Args


@dataclass(frozen=True)
class ResponseUrlPost:
    url: str
    body: Args


class SlackError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def channel_id_for(name: str) -> str:
    """A stable ``C…`` id for a channel name (``#alerts`` and ``alerts`` alike); ids pass through."""
    if _CHANNEL_ID.match(name):
        return name
    return "C" + hashlib.sha1(name.lstrip("#").encode()).hexdigest()[:10].upper()


def events_api_envelope(event: Args, *, event_id: str, team_id: str = "T0FAKE", retry_attempt: int = 0) -> Args:
    """A Socket Mode envelope carrying an Events API ``event_callback``."""
    payload = {"type": "event_callback", "team_id": team_id, "event_id": event_id, "event": event}
    return {
        "envelope_id": f"env-{event_id}-{retry_attempt}",
        "type": "events_api",
        "payload": payload,
        "accepts_response_payload": False,
        "retry_attempt": retry_attempt,
        "retry_reason": "timeout" if retry_attempt else "",
    }


def interactive_envelope(payload: Args, *, envelope_id: str = "env-interactive-1") -> Args:
    """A Socket Mode envelope carrying an interactivity payload (``block_actions`` …)."""
    return {"envelope_id": envelope_id, "type": "interactive", "payload": payload, "accepts_response_payload": False}


def _truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


class FakeSlack:
    def __init__(
        self,
        token: str = "xoxb-test",
        *,
        app_token: str = "xapp-test",
        team_id: str = "T0FAKE",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
    ) -> None:
        self.token, self.app_token = token, app_token
        self.team_id, self.bot_user_id, self.bot_id = team_id, bot_user_id, bot_id
        self.calls: list[SlackCall] = []
        self.response_url_posts: list[ResponseUrlPost] = []
        self.socket_acks: list[Args] = []
        self.base_url = ""
        self._messages: dict[str, list[Args]] = defaultdict(list)  # channel id → oldest first
        self._channel_errors: dict[str, str] = {}
        self._failures: dict[str, deque[tuple[str, int]]] = defaultdict(deque)
        self._rate_limits: dict[str, deque[int]] = defaultdict(deque)
        self._response_url_failures: dict[str, int] = {}
        self._after_effect: dict[str, deque[str]] = defaultdict(deque)
        self._sockets: set[web.WebSocketResponse] = set()
        self._changed = asyncio.Condition()
        self._last_ts = 0.0
        self._tickets = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._methods: dict[str, Callable[[Args], Args]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "reactions.add": self._reactions_add,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "apps.connections.open": self._apps_connections_open,
            "users.lookupByEmail": self._users_lookup_by_email,
            "users.info": self._users_info,
            "conversations.open": self._conversations_open,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }
        self._users: dict[str, Args] = {}  # user id → user object, as users.info returns it
        self._files: dict[str, Args] = {}  # file id → file object (with its uploaded bytes once POSTed)
        self._upload_failures: deque[int] = deque()
        self._file_ids = itertools.count(1)

    # ---- lifecycle ---------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/socket-mode/link", self._socket)
        app.router.add_post("/response-url/{key}", self._response_url)
        app.router.add_post("/upload/{file_id}", self._upload)
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        await self.disconnect_sockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # ---- knobs and inspection ----------------------------------------------------------------------

    def calls_to(self, method: str) -> list[SlackCall]:
        return [call for call in self.calls if call.method == method]

    def fail_next(self, method: str, error: str = "channel_not_found", count: int = 1, *, status: int = 200) -> None:
        """The next ``count`` calls of ``method`` answer ``{"ok": false, "error": error}`` with ``status``."""
        self._failures[method].extend([(error, status)] * count)

    def fail_after_effect(self, method: str, how: str = "500", count: int = 1) -> None:
        """The next ``count`` calls of ``method`` take effect, then the answer is lost.

        ``how``: ``"500"`` (``internal_error``), ``"429"`` (``ratelimited``, as a proxy might answer),
        ``"reset"`` (the connection is dropped) or ``"hang"`` (no answer until the caller gives up).
        """
        if how not in ("500", "429", "reset", "hang"):
            raise ValueError(f"unknown failure {how!r}")
        self._after_effect[method].extend([how] * count)

    def rate_limit_next(self, method: str, count: int = 1, retry_after: int = 1) -> None:
        self._rate_limits[method].extend([retry_after] * count)

    def set_channel_error(self, channel: str, error: str) -> None:
        """Every call naming ``channel`` fails with ``error`` (``is_archived``, ``channel_not_found`` …)."""
        self._channel_errors[channel_id_for(channel)] = error

    def remove_bot_from(self, channel: str) -> None:
        self.set_channel_error(channel, "not_in_channel")

    def messages(self, channel: str) -> list[Args]:
        """Every message in ``channel``, thread replies included, oldest first."""
        return list(self._messages[channel_id_for(channel)])

    def message(self, channel: str, ts: str) -> Args | None:
        return next((m for m in self._messages[channel_id_for(channel)] if m["ts"] == ts), None)

    def delete_message(self, channel: str, ts: str) -> None:
        self._messages[channel_id_for(channel)][:] = [
            m for m in self._messages[channel_id_for(channel)] if m["ts"] != ts
        ]

    def post_user_message(self, channel: str, text: str, *, user: str = "UHUMAN", thread_ts: str | None = None) -> Args:
        """A message from a person, as if typed in Slack (the bridge learns of it by an event, not here)."""
        return self._store(channel_id_for(channel), {"user": user, "text": text}, thread_ts, broadcast=False)

    def add_user(self, user_id: str, email: str, *, name: str = "someone") -> Args:
        """A workspace member, found by ``users.lookupByEmail`` and ``users.info``."""
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": name.title(),
            "deleted": False,
            "is_bot": False,
            "profile": {"email": email, "real_name": name.title(), "display_name": name},
        }
        self._users[user_id] = user
        return user

    @staticmethod
    def dm_channel_for(user_id: str) -> str:
        """The DM channel id ``conversations.open`` gives for a user (stable, like Slack's)."""
        return "D" + hashlib.sha1(user_id.encode()).hexdigest()[:10].upper()

    def fail_next_uploads(self, status: int = 500, count: int = 1) -> None:
        """The next ``count`` POSTs to an upload URL answer ``status``."""
        self._upload_failures.extend([status] * count)

    def uploaded(self, file_id: str) -> bytes | None:
        """The bytes POSTed to ``file_id``'s upload URL, if any."""
        content = self._files.get(file_id, {}).get("content")
        return content if isinstance(content, bytes) else None

    def shared_files(self, channel: str) -> list[Args]:
        """Messages of ``channel`` that share files (``files.completeUploadExternal``), oldest first."""
        return [m for m in self._messages[channel_id_for(channel)] if m.get("files")]

    def fail_response_url(self, key: str, status: int = 500) -> None:
        """The next POST to ``response_url(key)`` answers ``status`` (it is still recorded)."""
        self._response_url_failures[key] = status

    def response_url(self, key: str = "default") -> str:
        """A ``response_url`` as Slack puts in interactivity payloads; POSTs land in ``response_url_posts``."""
        return f"{self.base_url}/response-url/{key}"

    # ---- Socket Mode -------------------------------------------------------------------------------

    @property
    def socket_clients(self) -> int:
        return len(self._sockets)

    async def wait_for_socket(self) -> None:
        """Until a Socket Mode client is connected (at most ``WAIT_SECONDS``)."""
        await self._wait_until(lambda: bool(self._sockets))

    async def send_socket_envelope(self, envelope: Args) -> None:
        """Push an envelope to every connected Socket Mode client."""
        if not self._sockets:
            raise RuntimeError("no Socket Mode client is connected; await fake.wait_for_socket() first")
        for socket in list(self._sockets):
            await socket.send_json(envelope)

    async def wait_for_ack(self, envelope_id: str) -> Args:
        """The acknowledgement a client sent for ``envelope_id`` (waits at most ``WAIT_SECONDS``)."""
        await self._wait_until(lambda: any(a.get("envelope_id") == envelope_id for a in self.socket_acks))
        return next(a for a in self.socket_acks if a.get("envelope_id") == envelope_id)

    async def disconnect_sockets(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        self._sockets.clear()

    async def _wait_until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_SECONDS), self._changed:
            await self._changed.wait_for(condition)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json({"type": "hello", "num_connections": len(self._sockets) + 1})
        self._sockets.add(socket)
        await self._notify()
        async for frame in socket:
            if frame.type == WSMsgType.TEXT:
                self.socket_acks.append(json.loads(frame.data))
                await self._notify()
        self._sockets.discard(socket)
        return socket

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL of Slack's external upload flow: takes the raw bytes of one file."""
        file = self._files.get(request.match_info["file_id"])
        content = await request.read()
        if self._upload_failures:
            return web.Response(status=self._upload_failures.popleft(), text="upload failed")
        if file is None:
            return web.Response(status=404, text="unknown upload")
        # Slack's upload URL takes the file as the body, or as a multipart form field "file".
        if request.content_type.startswith("multipart/"):
            form = await request.post() if not content else None
            field_value = form.get("file") if form is not None else None
            content = field_value.file.read() if hasattr(field_value, "file") else content
        file["content"] = content
        return web.Response(text=f"OK - {len(content)}")

    async def _response_url(self, request: web.Request) -> web.Response:
        self.response_url_posts.append(ResponseUrlPost(str(request.url), await request.json()))
        status = self._response_url_failures.pop(request.match_info["key"], None)
        if status is not None:
            return web.Response(status=status, text="internal_error")
        return web.json_response({"ok": True})

    # ---- Web API dispatch --------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _read_args(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or args.pop("token", "")
        self.calls.append(SlackCall(method, args))
        if self._rate_limits[method]:
            retry_after = self._rate_limits[method].popleft()
            headers = {"Retry-After": str(retry_after)}
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers=headers)
        try:
            self._check_token(method, token)
            if self._failures[method]:
                error, status = self._failures[method].popleft()
                return web.json_response({"ok": False, "error": error}, status=status)
            handler = self._methods.get(method)
            if handler is None:
                raise SlackError("unknown_method")
            answer = handler(args)
            if self._after_effect[method]:
                return await self._lose_answer(request, self._after_effect[method].popleft())
            return web.json_response(answer)
        except SlackError as exc:
            return web.json_response({"ok": False, "error": exc.code})

    async def _lose_answer(self, request: web.Request, how: str) -> web.Response:
        if how == "500":
            return web.json_response({"ok": False, "error": "internal_error"}, status=500)
        if how == "429":
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"})
        if how == "hang":
            await asyncio.sleep(3600)  # the client's timeout ends it; stopping the fake cancels it
        assert request.transport is not None
        request.transport.abort()  # "reset": the effect happened, the caller sees a dropped connection
        return web.Response(status=500)

    def _check_token(self, method: str, token: str) -> None:
        if not token:
            raise SlackError("not_authed")
        expected = self.app_token if method in _APP_TOKEN_METHODS else self.token
        if token in (self.token, self.app_token) and token != expected:
            raise SlackError("not_allowed_token_type")
        if token != expected:
            raise SlackError("invalid_auth")

    def _channel(self, args: Args) -> str:
        if not args.get("channel"):
            raise SlackError("channel_not_found")
        channel = channel_id_for(str(args["channel"]))
        if channel in self._channel_errors:
            raise SlackError(self._channel_errors[channel])
        return channel

    def _find(self, channel: str, ts: Any) -> Args:
        found = next((m for m in self._messages[channel] if m["ts"] == ts), None)
        if found is None:
            raise SlackError("message_not_found")
        return found

    def _next_ts(self) -> str:
        # Wall-clock based so that ``oldest``/``latest`` filters behave like Slack's; strictly increasing.
        self._last_ts = max(time.time(), self._last_ts + 0.000001)
        return f"{self._last_ts:.6f}"

    def _store(self, channel: str, fields: Args, thread_ts: str | None, *, broadcast: bool) -> Args:
        message: Args = {"type": "message", "ts": self._next_ts(), **fields}
        if thread_ts:
            parent = next((m for m in self._messages[channel] if m["ts"] == thread_ts), None)
            message["thread_ts"] = thread_ts
            if broadcast:
                message["subtype"] = "thread_broadcast"
            if parent is not None:
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = message["ts"]
        self._messages[channel].append(message)
        return message

    # ---- methods -----------------------------------------------------------------------------------

    def _auth_test(self, _args: Args) -> Args:
        return {
            "ok": True,
            "url": "https://fake-workspace.slack.com/",
            "team": "Fake Workspace",
            "user": "oz-bridge",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
        }

    def _chat_post_message(self, args: Args) -> Args:
        channel = self._channel(args)
        fields = self._content(args, required=True)
        fields.update(user=self.bot_user_id, bot_id=self.bot_id, app_id="AFAKE")
        broadcast = _truthy(args.get("reply_broadcast"))
        message = self._store(channel, fields, args.get("thread_ts"), broadcast=broadcast)
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": dict(message)}

    def _chat_update(self, args: Args) -> Args:
        channel = self._channel(args)
        message = self._find(channel, args.get("ts"))
        if message.get("user") != self.bot_user_id:
            raise SlackError("cant_update_message")
        message.update(self._content(args, required=False), edited={"user": self.bot_user_id, "ts": self._next_ts()})
        return {"ok": True, "channel": channel, "ts": message["ts"], "text": message.get("text"), "message": message}

    def _chat_post_ephemeral(self, args: Args) -> Args:
        self._channel(args)
        if not args.get("user"):
            raise SlackError("user_not_in_channel")
        self._content(args, required=True)
        return {"ok": True, "message_ts": self._next_ts()}

    def _reactions_add(self, args: Args) -> Args:
        message = self._find(self._channel(args), args.get("timestamp"))
        name = str(args.get("name") or "")
        if not name:
            raise SlackError("invalid_name")
        reactions: list[Args] = message.setdefault("reactions", [])
        reaction = next((r for r in reactions if r["name"] == name), None)
        if reaction is None:
            reactions.append({"name": name, "users": [self.bot_user_id], "count": 1})
        elif self.bot_user_id in reaction["users"]:
            raise SlackError("already_reacted")
        else:
            reaction["users"].append(self.bot_user_id)
            reaction["count"] += 1
        return {"ok": True}

    def _conversations_history(self, args: Args) -> Args:
        channel = self._channel(args)
        in_channel = [
            m
            for m in self._messages[channel]
            if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"
        ]
        oldest, latest = float(args.get("oldest") or 0), float(args.get("latest") or "inf")
        inclusive = _truthy(args.get("inclusive"))
        window = [
            m
            for m in in_channel
            if (oldest <= float(m["ts"]) if inclusive else oldest < float(m["ts"]))
            and (float(m["ts"]) <= latest if inclusive else float(m["ts"]) < latest)
        ]
        return self._page(list(reversed(window)), args)

    def _conversations_replies(self, args: Args) -> Args:
        channel = self._channel(args)
        parent = next((m for m in self._messages[channel] if m["ts"] == args.get("ts")), None)
        if parent is None:
            raise SlackError("thread_not_found")
        replies = [m for m in self._messages[channel] if m.get("thread_ts") == parent["ts"] and m is not parent]
        return self._page([parent, *replies], args)

    def _page(self, messages: list[Args], args: Args) -> Args:
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 100)
        chunk = messages[start : start + limit]
        if not _truthy(args.get("include_all_metadata")):
            chunk = [{k: v for k, v in m.items() if k != "metadata"} for m in chunk]
        more = start + limit < len(messages)
        return {
            "ok": True,
            "messages": [dict(m) for m in chunk],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _apps_connections_open(self, _args: Args) -> Args:
        ws_url = self.base_url.replace("http://", "ws://", 1)
        return {"ok": True, "url": f"{ws_url}/socket-mode/link?ticket=ticket-{next(self._tickets)}"}

    def _user(self, user_id: Any) -> Args:
        user = self._users.get(str(user_id or ""))
        if user is None:
            raise SlackError("user_not_found")
        return user

    def _users_lookup_by_email(self, args: Args) -> Args:
        email = str(args.get("email") or "").strip().lower()
        if not email:
            raise SlackError("invalid_email")
        user = next((u for u in self._users.values() if u["profile"]["email"].lower() == email), None)
        if user is None:
            raise SlackError("users_not_found")
        return {"ok": True, "user": user}

    def _users_info(self, args: Args) -> Args:
        return {"ok": True, "user": self._user(args.get("user"))}

    def _conversations_open(self, args: Args) -> Args:
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if not users:
            raise SlackError("users_list_not_supplied")
        if len(users) > 1:
            raise SlackError("not_enough_users" if len(users) > 8 else "method_not_supported_for_channel_type")
        channel = self.dm_channel_for(self._user(users[0])["id"])
        return {"ok": True, "channel": {"id": channel}}

    def _files_get_upload_url_external(self, args: Args) -> Args:
        filename, length = args.get("filename"), str(args.get("length") or "")
        if not filename or not length.isdigit() or int(length) <= 0:
            raise SlackError("invalid_arguments")
        file_id = f"F{next(self._file_ids):09d}"
        self._files[file_id] = {"id": file_id, "name": str(filename), "size": int(length)}
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload_external(self, args: Args) -> Args:
        items = args.get("files")
        if isinstance(items, str):
            items = json.loads(items)
        if not isinstance(items, list) or not items:
            raise SlackError("invalid_arguments")
        files = []
        for item in items:
            file = self._files.get(str(item.get("id")))
            if file is None or "content" not in file:
                raise SlackError("file_not_found")
            file["title"] = item.get("title") or file["name"]
            files.append({k: v for k, v in file.items() if k != "content"})
        if args.get("channel_id"):
            channel = self._channel({"channel": args["channel_id"]})
            fields = {"user": self.bot_user_id, "bot_id": self.bot_id, "upload": True, "files": files}
            fields["text"] = str(args.get("initial_comment") or "")
            self._store(channel, fields, args.get("thread_ts"), broadcast=False)
        return {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in files]}

    def _content(self, args: Args, *, required: bool) -> Args:
        """The text/blocks/metadata of a message, checked against Slack's limits."""
        fields = {k: args[k] for k in ("text", "blocks", "attachments", "metadata") if args.get(k) is not None}
        if required and not (fields.get("text") or fields.get("blocks") or fields.get("attachments")):
            raise SlackError("no_text")
        if len(str(fields.get("text") or "")) > 40000:
            raise SlackError("msg_too_long")
        if "blocks" in fields:
            _check_blocks(fields["blocks"])
        metadata = fields.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, dict) and {"event_type", "event_payload"} <= metadata.keys()
        ):
            raise SlackError("invalid_metadata_format")
        return fields


def _check_blocks(blocks: Any) -> None:
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


async def _read_args(request: web.Request) -> Args:
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
