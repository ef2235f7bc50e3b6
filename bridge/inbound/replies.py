"""A human reply in a run's Slack thread becomes a follow-up to that run.

Only people's messages count (no bots, no edits or deletions), only in threads
the bridge started, and the bot's own mention is dropped from the text. A reply
starting with ``/plan `` or ``/orchestrate `` is sent in that mode, prefix removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from oz_agent_sdk import AsyncOzAPI, Omit, omit
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbound.access import REFUSAL, AccessPolicy
from bridge.inbound.calls import Refused, oz_call
from bridge.inbound.feedback import SlackFeedback
from bridge.inbound.identity import BotIdentity
from bridge.inbound.outcome import Outcome
from bridge.metrics import Metrics
from bridge.store import slack_threads
from bridge.store.inbox import InboxRow, NewInboxEntry

Mode = Literal["normal", "plan", "orchestrate"]
REPLY_EVENT_TYPES = frozenset({"message", "app_mention"})
# A thread_broadcast is a reply also shown in the channel; a file_share is a reply with files.
HUMAN_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})
_MODE_PREFIXES: tuple[tuple[str, Mode], ...] = (("/plan", "plan"), ("/orchestrate", "orchestrate"))


@dataclass(frozen=True)
class ThreadReply:
    channel: str
    ts: str
    thread_ts: str
    user: str
    text: str


@dataclass(frozen=True)
class Followup:
    message: str
    mode: Mode


def _text_field(event: dict[str, Any], name: str) -> str | None:
    value = event.get(name)
    return value if isinstance(value, str) and value else None


def thread_reply_of(event: dict[str, Any]) -> ThreadReply | None:
    """The event as a person's reply in some thread, or None when it is anything else."""
    if event.get("type") not in REPLY_EVENT_TYPES or event.get("subtype") not in HUMAN_SUBTYPES:
        return None
    if event.get("bot_id") or event.get("bot_profile"):
        return None
    channel, ts, user = _text_field(event, "channel"), _text_field(event, "ts"), _text_field(event, "user")
    thread_ts = _text_field(event, "thread_ts")
    # A message whose thread_ts is its own ts is a thread's root, not a reply in it.
    if not (channel and ts and user and thread_ts) or thread_ts == ts:
        return None
    text = event.get("text")
    return ThreadReply(channel, ts, thread_ts, user, text if isinstance(text, str) else "")


def inbox_entry(event_id: str, event: dict[str, Any]) -> NewInboxEntry | None:
    """What to store for an Events API event; None for events that can never become a follow-up."""
    reply = thread_reply_of(event)
    if reply is None:
        return None
    return NewInboxEntry(
        event_id=event_id,
        kind=str(event["type"]),
        payload={"event_id": event_id, "event": event},
        # message and app_mention for one message carry different event ids but one (channel, ts).
        dedupe_key=f"message:{reply.channel}:{reply.ts}",
        queue_key=f"thread:{reply.channel}:{reply.thread_ts}",
    )


def followup_of(text: str, bot_user_id: str | None) -> Followup | None:
    """The follow-up a reply's text asks for, or None when nothing is left to send."""
    if bot_user_id:
        text = re.sub(rf"[ \t]*<@{re.escape(bot_user_id)}(?:\|[^>]*)?>[ \t]*", " ", text)
    # Slack escapes exactly these three in message text (&amp; last, so "&amp;lt;" stays "&lt;").
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()
    mode: Mode = "normal"
    for prefix, prefix_mode in _MODE_PREFIXES:
        rest = text[len(prefix) :]
        # "/plan" alone asks for a mode but says nothing: nothing to send.
        if text.startswith(prefix) and (not rest or rest[:1].isspace()):
            text, mode = rest.strip(), prefix_mode
            break
    return Followup(text, mode) if text else None


def refusal_text(exc: Refused) -> str:
    """Why the run did not get the follow-up, in words."""
    # The API's words go to Slack as mrkdwn: escaped, so they can't mention or link anyone.
    said = exc.detail.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    detail = f" (the Oz API said: {said})" if said else ""
    reasons = {
        404: "the Oz API doesn't know this run any more",
        409: f"the run can't take a follow-up right now{detail}; please try again in a moment",
        422: f"this run doesn't accept follow-ups{detail}",
        400: f"the Oz API didn't accept it{detail}",
        401: "the bridge is not allowed to send follow-ups (the Oz API rejected its credentials)",
        403: "the bridge is not allowed to send follow-ups to this run",
    }
    reason = reasons.get(exc.status, f"the Oz API refused it with status {exc.status}{detail}")
    return f"Your reply was not sent to the run: {reason}."


class ReplyHandler:
    """Acts on stored thread replies: at most one follow-up per Slack message."""

    def __init__(
        self,
        engine: AsyncEngine,
        oz: AsyncOzAPI,
        feedback: SlackFeedback,
        identity: BotIdentity,
        access: AccessPolicy,
        metrics: Metrics,
    ) -> None:
        self._engine = engine
        self._oz = oz
        self._feedback = feedback
        self._identity = identity
        self._access = access
        self._metrics = metrics

    async def act(self, row: InboxRow) -> Outcome:
        reply = thread_reply_of(row.payload.get("event") or {})
        if reply is None:
            return Outcome.ignored("not a person's thread reply")
        bot_user_id = await self._identity.user_id()
        if reply.user == bot_user_id:
            return Outcome.ignored("the bridge's own message")
        async with self._engine.connect() as conn:
            thread = await slack_threads.find_by_root(conn, reply.channel, reply.thread_ts)
        if thread is None:
            return Outcome.ignored("not a thread the bridge started")
        if not self._access.allows(reply.user, reply.channel):
            return self._counted(Outcome("denied", REFUSAL, thread.run_id))
        followup = followup_of(reply.text, bot_user_id)
        if followup is None:
            return Outcome.ignored("no text left to send")
        await self._feedback.react_soon(reply.channel, reply.ts, "eyes")
        return self._counted(await self._submit(thread.run_id, followup))

    async def _submit(self, run_id: str, followup: Followup) -> Outcome:
        mode: Mode | Omit = omit if followup.mode == "normal" else followup.mode
        try:
            await oz_call(self._oz.agent.runs.submit_followup(run_id, message=followup.message, mode=mode), effect=True)
        except Refused as exc:
            return Outcome("refused", refusal_text(exc), run_id)
        return Outcome("accepted", "", run_id)

    def _counted(self, outcome: Outcome) -> Outcome:
        self._metrics.followups.labels(outcome.result).inc()
        return outcome

    async def tell(self, row: InboxRow, outcome: Outcome) -> None:
        reply = thread_reply_of(row.payload.get("event") or {})
        if reply is None or outcome.result == "ignored":
            return
        if outcome.result == "accepted":
            await self._feedback.react(reply.channel, reply.ts, "white_check_mark")
        elif outcome.result == "denied":
            await self._feedback.ephemeral(reply.channel, reply.user, outcome.text, thread_ts=reply.thread_ts)
        else:
            await self._feedback.thread_reply(reply.channel, reply.thread_ts, outcome.text)

    def give_up(self, row: InboxRow, reason: str) -> Outcome:
        self._metrics.followups.labels("gave_up").inc()
        text = "Your reply was not sent to the run: the Oz API could not be reached. Please send it again later."
        return Outcome("gave_up", text)
