"""A human reply in a run's Slack thread becomes a follow-up to that run.

Only people's messages count (no bots, no edits or deletions), only in bridge
threads (a root, a started thread, a parent's thread, a DM), and the bot's own
mention is dropped from the text. A reply starting with ``/plan `` or
``/orchestrate `` is sent in that mode, prefix removed; ``/mute`` and
``/unmute`` are commands to the bridge (``mutes``), never sent to the agent.
The run is the thread's owner as the store says when the reply is acted on (a
Retry changes it), never what was true when the reply arrived.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from oz_agent_sdk import AsyncOzAPI, Omit, omit
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbound.access import REFUSAL, AccessPolicy
from bridge.inbound.calls import Refused, Transient, oz_call
from bridge.inbound.feedback import SlackFeedback
from bridge.inbound.fields import Unusable
from bridge.inbound.identity import BotIdentity
from bridge.inbound.mutes import (
    MUTED_REACTION,
    UNMUTED_REACTION,
    Mutes,
    UnreadableMute,
    thread_command_of,
    unreadable_text,
)
from bridge.inbound.outcome import Outcome
from bridge.inbound.prefilter import InThread, concern_of_message
from bridge.inbound.request import SlackMessage, message_of
from bridge.inbound.threads import MARKER_WINDOW
from bridge.metrics import Metrics
from bridge.store import slack_threads
from bridge.store.inbox import InboxRow, NewInboxEntry
from bridge.store.slack_threads import ThreadOwner

Mode = Literal["normal", "plan", "orchestrate"]
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


def thread_reply_of(message: SlackMessage) -> ThreadReply | None:
    """The message as a person's reply in some thread, or None when it is anything else."""
    if not isinstance(concern_of_message(message), InThread):
        return None
    assert message.channel and message.ts and message.thread_ts and message.user  # the prefilter's rules
    return ThreadReply(message.channel, message.ts, message.thread_ts, message.user, message.text)


def stored_message(row: InboxRow) -> SlackMessage | None:
    """The message an inbox row holds; rows stored before typed requests hold the raw event."""
    payload = row.payload
    if "event" not in payload:
        return SlackMessage.from_json(payload)
    event = payload["event"]
    try:
        message = message_of(row.event_id, event) if isinstance(event, dict) else None
    except Unusable:
        return None
    return message if isinstance(message, SlackMessage) else None


def inbox_entry(message: SlackMessage) -> NewInboxEntry:
    """What to store for a message the prefilter kept: keyed by its event id and by (channel, ts)."""
    return NewInboxEntry(
        event_id=message.event_id,
        kind=message.event_type,
        payload=message.to_json(),
        # message and app_mention for one message carry different event ids but one (channel, ts).
        dedupe_key=f"message:{message.channel}:{message.ts}",
        queue_key=f"thread:{message.channel}:{message.thread_ts}",
    )


def plain_text(text: str, bot_user_id: str | None) -> str:
    """A message's text as the person meant it: the bot's mention removed, Slack's escapes undone."""
    if bot_user_id:
        text = re.sub(rf"[ \t]*<@{re.escape(bot_user_id)}(?:\|[^>]*)?>[ \t]*", " ", text)
    # Slack escapes exactly these three in message text (&amp; last, so "&amp;lt;" stays "&lt;").
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


def followup_of(text: str, bot_user_id: str | None) -> Followup | None:
    """The follow-up a reply's text asks for, or None when nothing is left to send."""
    return followup_in(plain_text(text, bot_user_id))


def followup_in(text: str) -> Followup | None:
    """The follow-up a plain text (``plain_text``) asks for: its mode prefix read and removed."""
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


def _reply(row: InboxRow) -> ThreadReply | None:
    message = stored_message(row)
    return thread_reply_of(message) if message is not None else None


class ReplyHandler:
    """Acts on stored thread replies: at most one follow-up (or mute change) per Slack message."""

    def __init__(
        self,
        engine: AsyncEngine,
        oz: AsyncOzAPI,
        feedback: SlackFeedback,
        identity: BotIdentity,
        access: AccessPolicy,
        mutes: Mutes,
        metrics: Metrics,
    ) -> None:
        self._engine = engine
        self._oz = oz
        self._feedback = feedback
        self._identity = identity
        self._access = access
        self._mutes = mutes
        self._metrics = metrics

    async def act(self, row: InboxRow) -> Outcome:
        reply = _reply(row)
        if reply is None:
            return Outcome.ignored("not a person's thread reply")
        bot_user_id = await self._identity.user_id()
        if reply.user == bot_user_id:
            return Outcome.ignored("the bridge's own message")
        owner = await self._owner(reply)
        if owner is None:
            return Outcome.ignored("not a bridge thread, or no run was started in it")
        in_dm = owner.placement is not None and owner.placement.kind == "dm"
        if not self._access.allows(reply.user, reply.channel, in_dm=in_dm):
            return self._counted(Outcome("denied", REFUSAL, owner.run_id))
        text = plain_text(reply.text, bot_user_id)
        command = thread_command_of(text)
        if isinstance(command, UnreadableMute):
            return Outcome("refused", unreadable_text(command), owner.run_id)
        if command is not None:
            return await self._mutes.apply(owner.placement, command)
        followup = followup_in(text)
        if followup is None:
            return Outcome.ignored("no text left to send")
        await self._feedback.react_soon(reply.channel, reply.ts, "eyes")
        return self._counted(await self._submit(owner.run_id, followup))

    async def _owner(self, reply: ThreadReply) -> ThreadOwner | None:
        """The run the reply is for, from the bridge's own records, as they are now."""
        since = datetime.now(UTC) - MARKER_WINDOW
        async with self._engine.connect() as conn:
            owner = await slack_threads.owner_of(conn, reply.channel, reply.thread_ts)
            if owner is not None:
                return owner
            found = await slack_threads.bridge_threads(conn, [(reply.channel, reply.thread_ts)], since)
        if reply.channel in found.marker_channels or None in found.marker_channels:
            raise Transient("a root is being posted in this channel and its record is not there yet")
        return None

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
        reply = _reply(row)
        if reply is None or outcome.result == "ignored":
            return
        if outcome.result == "accepted":
            await self._feedback.react(reply.channel, reply.ts, "white_check_mark")
        elif outcome.result in ("muted", "unmuted"):
            reaction = MUTED_REACTION if outcome.result == "muted" else UNMUTED_REACTION
            await self._feedback.react(reply.channel, reply.ts, reaction)
            if outcome.run_id:
                await self._mutes.redraw(outcome.run_id)
            await self._feedback.ephemeral(reply.channel, reply.user, outcome.text, thread_ts=reply.thread_ts)
        elif outcome.result == "denied":
            await self._feedback.ephemeral(reply.channel, reply.user, outcome.text, thread_ts=reply.thread_ts)
        else:
            await self._feedback.thread_reply(reply.channel, reply.thread_ts, outcome.text)

    def give_up(self, row: InboxRow, reason: str) -> Outcome:
        self._metrics.followups.labels("gave_up").inc()
        text = "Your reply was not sent to the run: the Oz API could not be reached. Please send it again later."
        return Outcome("gave_up", text)
