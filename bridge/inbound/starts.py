"""A person's mention of the bot starts an Oz run, told in the thread of that message.

The prompt is the text without the mention (``/plan `` or ``/orchestrate `` in
front picks the mode), the agent config is ``slack.start.config``, and the run's
metadata ties it to the message (``slack_channel``, ``slack_thread_ts``,
``slack_user``), which is also how it is found again: ``run_requests.start``
looks for a run carrying that metadata before creating one, so a Slack retry, a
crash after the create call or a retry of this row never starts a second run.
Images attached to the message go along as ``attachments``; with
``slack.start.on_behalf_of`` the run is the person's, by their Slack email.
A refusal is answered in the thread in words. The built-in ``@slack-thread``
target then tells the run in that thread.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from oz_agent_sdk import AsyncOzAPI
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge import run_requests
from bridge.inbound.access import START_REFUSAL, AccessPolicy
from bridge.inbound.calls import Refused, SlackRefused, Transient, oz_call, slack_call
from bridge.inbound.feedback import SlackFeedback
from bridge.inbound.identity import BotIdentity
from bridge.inbound.images import SlackImages
from bridge.inbound.outcome import Outcome
from bridge.inbound.prefilter import StartChannels
from bridge.inbound.replies import Followup, followup_of, stored_message
from bridge.inbound.request import SlackMessage
from bridge.metrics import Metrics
from bridge.run_requests import RunRequest
from bridge.settings import SlackStartSettings
from bridge.store import slack_started
from bridge.store.inbox import InboxRow, NewInboxEntry

START_KIND = "slack_start"
THREAD_KEYS = ("slack_channel", "slack_thread_ts")  # what makes a started run unique: its message
HINT = (
    "Tell me what to do after the mention, for example `@oz-bridge fix the flaky checkout test` "
    "(start with `/plan ` or `/orchestrate ` to pick a mode)."
)
NO_EMAIL = (
    "The run was not started: runs here are started on behalf of the person who asks, and Slack "
    "did not give the bridge an email for you (the app needs the users:read.email scope, and your "
    "profile an email address)."
)
GAVE_UP = "The run was not started: the Oz API could not be reached. Please mention me again later."


@dataclass(frozen=True)
class RunAsk:
    """A mention that asks for a run: the message, who wrote it, what it says, what it carries."""

    channel: str
    ts: str
    user: str
    text: str
    file_ids: tuple[str, ...]


def inbox_entry(message: SlackMessage) -> NewInboxEntry:
    """A mention asking for a run; replies in its thread queue behind it (the thread is its ts)."""
    return NewInboxEntry(
        event_id=message.event_id,
        kind=START_KIND,
        payload=message.to_json(),
        dedupe_key=f"message:{message.channel}:{message.ts}",
        queue_key=f"thread:{message.channel}:{message.ts}",
    )


def ask_of(row: InboxRow) -> RunAsk | None:
    message = stored_message(row)
    if message is None or not (message.channel and message.ts and message.user):
        return None
    return RunAsk(message.channel, message.ts, message.user, message.text, message.file_ids)


def run_request(ask: RunAsk, wanted: Followup, settings: SlackStartSettings) -> RunRequest:
    metadata = {"slack_channel": ask.channel, "slack_thread_ts": ask.ts, "slack_user": ask.user}
    return RunRequest(
        prompt=wanted.message, metadata=metadata, identity=THREAD_KEYS, mode=wanted.mode, config=settings.config
    )


class StartHandler:
    def __init__(
        self,
        engine: AsyncEngine,
        oz: AsyncOzAPI,
        slack: AsyncWebClient,
        feedback: SlackFeedback,
        identity: BotIdentity,
        access: AccessPolicy,
        starts: StartChannels,
        settings: SlackStartSettings,
        images: SlackImages,
        metrics: Metrics,
    ) -> None:
        self._engine, self._oz, self._slack, self._feedback = engine, oz, slack, feedback
        self._identity, self._access, self._starts, self._settings = identity, access, starts, settings
        self._images, self._metrics = images, metrics

    async def act(self, row: InboxRow) -> Outcome:
        ask = ask_of(row)
        if ask is None:
            return Outcome.ignored("not a person's mention")
        if not self._starts.allow(ask.channel):
            return Outcome.ignored("mentions no longer start runs in this channel")  # the config changed since
        bot_user_id = await self._identity.user_id()
        if ask.user == bot_user_id:
            return Outcome.ignored("the bridge's own message")
        if not self._access.allows(ask.user, ask.channel):
            return self._counted(Outcome("denied", START_REFUSAL))
        wanted = followup_of(ask.text, bot_user_id)
        if wanted is None:
            return self._counted(Outcome("refused", HINT))
        await self._feedback.react_soon(ask.channel, ask.ts, "eyes")
        request = await self._request(ask, wanted)
        if isinstance(request, Outcome):
            return self._counted(request)
        return self._counted(await self._start(ask, *request))

    async def _request(self, ask: RunAsk, wanted: Followup) -> tuple[RunRequest, str] | Outcome:
        """The run to ask for, with its images and owner, and what to say about files left out."""
        request = run_request(ask, wanted, self._settings)
        if self._settings.on_behalf_of:
            email = await self._email_of(ask.user)
            if email is None:
                return Outcome("refused", NO_EMAIL)
            request = replace(request, on_behalf_of=email)
        images = await self._images.of(ask.file_ids)
        if images.attachments:
            request = replace(request, attachments=images.attachments)
        return request, images.note()

    async def _start(self, ask: RunAsk, request: RunRequest, note: str) -> Outcome:
        try:
            started = await oz_call(run_requests.start(self._oz, request))
        except Refused as exc:
            return Outcome("refused", run_requests.refusal_text(exc.status, exc.body))
        if started is None:
            raise Transient("Oz API answered the new run with an unreadable body")
        async with self._engine.begin() as conn:
            await slack_started.record_run(conn, (ask.channel, ask.ts), started.run_id, datetime.now(UTC))
        return Outcome("existing" if started.already_existed else "started", note, started.run_id)

    async def _email_of(self, user: str) -> str | None:
        try:
            response = await slack_call(self._slack.users_info(user=user))
        except SlackRefused:
            return None
        person = response.get("user")
        profile = person.get("profile") if isinstance(person, dict) else None
        email = profile.get("email") if isinstance(profile, dict) else None
        return email.strip() if isinstance(email, str) and "@" in email and len(email) <= 320 else None

    def _counted(self, outcome: Outcome) -> Outcome:
        self._metrics.slack_run_starts.labels("mention", outcome.result).inc()
        return outcome

    async def tell(self, row: InboxRow, outcome: Outcome) -> None:
        ask = ask_of(row)
        if ask is None or outcome.result == "ignored":
            return
        if outcome.result == "denied":
            await self._feedback.ephemeral(ask.channel, ask.user, outcome.text)
        elif outcome.text:
            # The run's own status message follows in this thread; only what it can't say is said here.
            await self._feedback.thread_reply(ask.channel, ask.ts, outcome.text)

    def give_up(self, row: InboxRow, reason: str) -> Outcome:
        self._metrics.slack_run_starts.labels("mention", "gave_up").inc()
        return Outcome("gave_up", GAVE_UP)
