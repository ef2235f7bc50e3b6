"""A local stand-in for Slack's Web API, for ``oz-bridge demo --slack`` and the tests' fake Slack.

slack-sdk's ``AsyncWebClient(token=..., base_url=standin.api_url)`` talks to it
unchanged: methods are served at ``/api/<method>`` with query, form or JSON
arguments and answer as Slack documents them (HTTP 200 with ``ok: false`` for
API errors): messages with threads, updates, ephemerals, reactions, history and
replies (message metadata on request), ``auth.test``, users by id and by email,
DMs (``conversations.open``), and files (``slack_files``: the external upload
flow, ``files.info``, private downloads with the bot token). What Slack sends
to an app (signed events and clicks) is ``slack_events``.

It keeps everything in memory and checks what the bridge relies on (tokens,
Block Kit limits through slack-sdk's own models, metadata shape). The tests'
``FakeSlack`` adds failure knobs and Socket Mode on top of it.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .slack_errors import SlackError
from .slack_files import SlackFiles
from .slack_people import SlackPeople, dm_channel_for
from .slack_wire import Args, content, page, read_args, truthy

__all__ = ["Args", "SlackCall", "SlackError", "SlackStandIn", "channel_id_for", "dm_channel_for", "truthy"]
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})


@dataclass(frozen=True)
class SlackCall:
    method: str
    args: Args


def channel_id_for(name: str) -> str:
    """A stable ``C…`` id for a channel name (``#alerts`` and ``alerts`` alike); ids pass through."""
    if _CHANNEL_ID.match(name):
        return name
    return "C" + hashlib.sha1(name.lstrip("#").encode()).hexdigest()[:10].upper()


class SlackStandIn:
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
        self.base_url = ""
        self.files = SlackFiles(self)
        self.people = SlackPeople(team_id)
        self._messages: dict[str, list[Args]] = defaultdict(list)  # channel id → oldest first
        self._last_ts = 0.0
        self._runner: web.AppRunner | None = None
        self._listeners: list[Callable[[str, Args], None]] = []
        self._methods: dict[str, Callable[[Args], Args]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "reactions.add": self._reactions_add,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            **self.people.methods(),
            **self.files.methods(),
        }

    # ---- lifecycle ---------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def routes(self, app: web.Application) -> None:
        """The HTTP routes; a subclass adds its own after these."""
        app.router.add_route("*", "/api/{method}", self._api)
        self.files.routes(app)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.routes(app)
        self._runner = web.AppRunner(app, shutdown_timeout=1, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound = self._runner.addresses[0]
        self.base_url = f"http://{bound[0]}:{bound[1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackStandIn:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # ---- the workspace, as a test or the demo sees it ----------------------------------------------

    def on_change(self, listener: Callable[[str, Args], None]) -> None:
        """Call ``listener(what, message)`` for each post or update of a message (the demo prints them)."""
        self._listeners.append(listener)

    def calls_to(self, method: str) -> list[SlackCall]:
        return [call for call in self.calls if call.method == method]

    def messages(self, channel: str) -> list[Args]:
        """Every message in ``channel``, thread replies included, oldest first."""
        return list(self._messages[channel_id_for(channel)])

    def message(self, channel: str, ts: str) -> Args | None:
        return next((m for m in self._messages[channel_id_for(channel)] if m["ts"] == ts), None)

    def delete_message(self, channel: str, ts: str) -> None:
        kept = [m for m in self._messages[channel_id_for(channel)] if m["ts"] != ts]
        self._messages[channel_id_for(channel)][:] = kept

    def post_user_message(
        self,
        channel: str,
        text: str,
        *,
        user: str = "UHUMAN",
        thread_ts: str | None = None,
        files: list[Args] | None = None,
    ) -> Args:
        """A message from a person, as if typed in Slack (the app learns of it by an event, not here)."""
        fields: Args = {"user": user, "text": text}
        if files:
            fields.update(files=files, upload=False)
        return self.store(channel_id_for(channel), fields, thread_ts, broadcast=False)

    def add_user(self, user_id: str, email: str, *, name: str = "someone") -> Args:
        """A workspace member, found by ``users.lookupByEmail`` and ``users.info``."""
        return self.people.add(user_id, email, name=name)

    @staticmethod
    def dm_channel_for(user_id: str) -> str:
        """The DM channel id ``conversations.open`` gives for a user (stable, like Slack's)."""
        return dm_channel_for(user_id)

    def uploaded(self, file_id: str) -> bytes | None:
        """The bytes POSTed to ``file_id``'s upload URL, if any."""
        return self.files.content(file_id)

    def shared_files(self, channel: str) -> list[Args]:
        """Messages of ``channel`` that share files (``files.completeUploadExternal``), oldest first."""
        return [m for m in self._messages[channel_id_for(channel)] if m.get("files") and m.get("upload")]

    # ---- Web API dispatch --------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await read_args(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or args.pop("token", "")
        self.calls.append(SlackCall(method, args))
        intercepted = await self.intercept(method, request)
        if intercepted is not None:
            return intercepted
        try:
            self.check_token(method, token)
            refused = self.refusal(method)
            if refused is not None:
                return refused
            handler = self._methods.get(method)
            if handler is None:
                raise SlackError("unknown_method")
            answer = handler(args)
            lost = await self.after_effect(method, request)
            return lost if lost is not None else web.json_response(answer)
        except SlackError as exc:
            return web.json_response({"ok": False, "error": exc.code})

    # Hooks for the tests' fake: answers other than the genuine one.
    async def intercept(self, method: str, request: web.Request) -> web.Response | None:
        """Before the token is checked (a rate limit)."""
        return None

    def refusal(self, method: str) -> web.Response | None:
        """After the token is checked, instead of the effect (an injected error)."""
        return None

    async def after_effect(self, method: str, request: web.Request) -> web.Response | None:
        """After the effect, instead of its answer (a lost answer)."""
        return None

    def channel_error(self, channel: str) -> str | None:
        """An error every call naming ``channel`` gets (``not_in_channel`` …)."""
        return None

    def check_token(self, method: str, token: str) -> None:
        if not token:
            raise SlackError("not_authed")
        expected = self.app_token if method in APP_TOKEN_METHODS else self.token
        if token in (self.token, self.app_token) and token != expected:
            raise SlackError("not_allowed_token_type")
        if token != expected:
            raise SlackError("invalid_auth")

    def channel(self, args: Args) -> str:
        if not args.get("channel"):
            raise SlackError("channel_not_found")
        channel = channel_id_for(str(args["channel"]))
        error = self.channel_error(channel)
        if error is not None:
            raise SlackError(error)
        return channel

    def _find(self, channel: str, ts: Any) -> Args:
        found = next((m for m in self._messages[channel] if m["ts"] == ts), None)
        if found is None:
            raise SlackError("message_not_found")
        return found

    def next_ts(self) -> str:
        # Wall-clock based so that ``oldest``/``latest`` filters behave like Slack's; strictly increasing.
        self._last_ts = max(time.time(), self._last_ts + 0.000001)
        return f"{self._last_ts:.6f}"

    def store(self, channel: str, fields: Args, thread_ts: str | None, *, broadcast: bool) -> Args:
        message: Args = {"type": "message", "ts": self.next_ts(), **fields}
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
        self._tell("posted", {**message, "channel": channel})
        return message

    def _tell(self, what: str, message: Args) -> None:
        for listener in self._listeners:
            listener(what, message)

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

    def bot_fields(self) -> Args:
        return {"user": self.bot_user_id, "bot_id": self.bot_id, "app_id": "AFAKE"}

    def _chat_post_message(self, args: Args) -> Args:
        channel = self.channel(args)
        fields = {**content(args, required=True), **self.bot_fields()}
        message = self.store(channel, fields, args.get("thread_ts"), broadcast=truthy(args.get("reply_broadcast")))
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": dict(message)}

    def _chat_update(self, args: Args) -> Args:
        channel = self.channel(args)
        message = self._find(channel, args.get("ts"))
        if message.get("user") != self.bot_user_id:
            raise SlackError("cant_update_message")
        message.update(content(args, required=False), edited={"user": self.bot_user_id, "ts": self.next_ts()})
        self._tell("updated", {**message, "channel": channel})
        return {"ok": True, "channel": channel, "ts": message["ts"], "text": message.get("text"), "message": message}

    def _chat_post_ephemeral(self, args: Args) -> Args:
        channel = self.channel(args)
        if not args.get("user"):
            raise SlackError("user_not_in_channel")
        fields = content(args, required=True)
        self._tell("ephemeral", {**fields, "channel": channel, "for_user": args["user"]})
        return {"ok": True, "message_ts": self.next_ts()}

    def _reactions_add(self, args: Args) -> Args:
        channel = self.channel(args)
        message = self._find(channel, args.get("timestamp"))
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
        self._tell("reacted", {**message, "channel": channel, "reaction": name})
        return {"ok": True}

    def _conversations_history(self, args: Args) -> Args:
        channel = self.channel(args)
        in_channel = [
            m
            for m in self._messages[channel]
            if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"
        ]
        oldest, latest = float(args.get("oldest") or 0), float(args.get("latest") or "inf")
        inclusive = truthy(args.get("inclusive"))
        window = [
            m
            for m in in_channel
            if (oldest <= float(m["ts"]) if inclusive else oldest < float(m["ts"]))
            and (float(m["ts"]) <= latest if inclusive else float(m["ts"]) < latest)
        ]
        return page(list(reversed(window)), args)

    def _conversations_replies(self, args: Args) -> Args:
        channel = self.channel(args)
        parent = next((m for m in self._messages[channel] if m["ts"] == args.get("ts")), None)
        if parent is None:
            raise SlackError("thread_not_found")
        replies = [m for m in self._messages[channel] if m.get("thread_ts") == parent["ts"] and m is not parent]
        return page([parent, *replies], args)
