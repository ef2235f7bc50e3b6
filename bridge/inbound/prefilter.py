"""Can this request concern the bridge at all? Decided before any database work.

Pure functions of the typed request: most of what Slack sends a bot in a busy
channel (other bots, edits, joins, top-level chatter) is dropped here with a
reason that becomes a metric label. What survives is kept as it is (a click
on one of the bridge's buttons), asks for a run (a person's top-level mention
of the bot where ``slack.start.channels`` allows it), or needs one more
question that only stored state can answer (is this thread one of the
bridge's?). A reply in a direct message is a reply like any other: whether
its thread is a DM the bridge owns is that same question.

Adding a kind of message the bridge acts on means adding one rule and one
``Concern``; nothing else here changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bridge.inbound.request import ButtonClick, SlackMessage
from bridge.notifiers.slack_messages import (
    CANCEL_ACTION_ID,
    GET_FILES_ACTION_ID,
    MUTE_ACTION_ID,
    RETRY_ACTION_ID,
    UNMUTE_ACTION_ID,
)
from bridge.notifiers.slack_plans import APPROVE_PLAN_ACTION_ID

BUTTONS = frozenset(
    {CANCEL_ACTION_ID, GET_FILES_ACTION_ID, RETRY_ACTION_ID, MUTE_ACTION_ID, UNMUTE_ACTION_ID, APPROVE_PLAN_ACTION_ID}
)
# A thread_broadcast is a reply also shown in the channel; a file_share is a reply with files.
HUMAN_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})


@dataclass(frozen=True)
class Drop:
    reason: str  # a short label: it is a metric label value


@dataclass(frozen=True)
class InThread:
    """A person's reply in some thread: it concerns the bridge if the thread is one of its own."""

    channel: str
    thread_ts: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel, self.thread_ts)


@dataclass(frozen=True)
class AsksForRun:
    """A person's top-level mention of the bot where mentions start runs: the message is its thread."""

    channel: str
    ts: str


@dataclass(frozen=True)
class StartChannels:
    """Where a mention of the bot starts a run: ``slack.start.channels`` (``["*"]``: any channel the
    bot is in). Direct messages are not channels: a mention there starts nothing."""

    ids: frozenset[str]

    @classmethod
    def of(cls, channels: Iterable[str]) -> StartChannels:
        return cls(frozenset(channels))

    def allow(self, channel: str) -> bool:
        if channel.startswith("D"):
            return False
        return "*" in self.ids or channel in self.ids


NO_STARTS = StartChannels(frozenset())


@dataclass(frozen=True)
class Keep:
    """Store as it is; the inbox worker checks it against stored state before acting."""


Concern = Drop | InThread | AsksForRun | Keep
MessageRule = Callable[[SlackMessage], str | None]


def _from_a_bot(message: SlackMessage) -> str | None:
    return "bot" if message.from_bot or message.subtype == "bot_message" else None


def _not_typed_by_a_person(message: SlackMessage) -> str | None:
    # Edits, deletions, joins, topic changes … carry a subtype; none of them is a new reply.
    return "subtype" if message.subtype not in HUMAN_SUBTYPES else None


def _incomplete(message: SlackMessage) -> str | None:
    return "incomplete" if not (message.channel and message.ts and message.user) else None


def _is_a_thread_reply(message: SlackMessage) -> bool:
    # A message whose thread_ts is its own ts is a thread's root, not a reply in it.
    return message.thread_ts is not None and message.thread_ts != message.ts


MESSAGE_RULES: tuple[MessageRule, ...] = (_from_a_bot, _not_typed_by_a_person, _incomplete)


def concern_of_message(message: SlackMessage, starts: StartChannels = NO_STARTS) -> Concern:
    for rule in MESSAGE_RULES:
        reason = rule(message)
        if reason is not None:
            return Drop(reason)
    assert message.channel is not None and message.ts is not None  # guaranteed by the rules above
    if _is_a_thread_reply(message):
        assert message.thread_ts is not None
        return InThread(message.channel, message.thread_ts)
    # Slack sends a top-level mention twice (message and app_mention): the app_mention is the one
    # that says the bot was mentioned, so it alone asks for a run.
    if message.event_type != "app_mention":
        return Drop("not_in_a_thread")
    if not starts.allow(message.channel):
        return Drop("start_not_enabled")
    return AsksForRun(message.channel, message.ts)


def concern_of_click(click: ButtonClick) -> Concern:
    if click.action_id not in BUTTONS:
        return Drop("not_our_button")  # Open session is a link button: Slack still reports its click
    if click.user is None:
        return Drop("incomplete")
    return Keep()


def concern_of(request: SlackMessage | ButtonClick, starts: StartChannels = NO_STARTS) -> Concern:
    if isinstance(request, SlackMessage):
        return concern_of_message(request, starts)
    return concern_of_click(request)
