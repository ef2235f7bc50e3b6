"""Slack target: each run told in one place per target, its status message kept current, its changes replied.

Where a run is told (a root in the channel, the thread it was started in, its
parent's thread, a DM to its creator) is decided once and stored as a
placement; see ``slack_places``. The first event posts the status message
(``slack_status``, crash-safe); every later one updates it in place and adds a
reply in the thread, unless the placement is muted. Plans and screenshots are
shown in full (``slack_artifacts``). A child run's change also redraws its
parent's status message, whose ``Sub-runs`` line counts the children's states.
This notifier only classifies Slack's errors; when to retry is ``bridge.delivery``'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import aiohttp
from oz_agent_sdk import AsyncOzAPI
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.events import RUN_STILL_BLOCKED, Event, JSONDict
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.notifiers.base import Outcome
from bridge.notifiers.keyed_locks import KeyedLocks
from bridge.notifiers.slack_artifacts import ArtifactTeller
from bridge.notifiers.slack_digest import digest_message
from bridge.notifiers.slack_errors import BoundedRateLimitRetryHandler, classify, error_code
from bridge.notifiers.slack_messages import creator_mention, is_broadcast, root_message, root_tells, thread_reply
from bridge.notifiers.slack_people import CreatorDirectory
from bridge.notifiers.slack_places import Placer, Skip, Wait
from bridge.notifiers.slack_status import Posted, StatusMessages, updated_at_of
from bridge.settings import SlackSettings, SlackTarget
from bridge.store import runs as run_store
from bridge.store import slack_placements
from bridge.store.slack_placements import THREAD_PLACE, PlannedPlacement, SlackPlacement

__all__ = ["SlackContext", "SlackNotifier", "classify", "error_code"]
log = get_logger("bridge.notifiers.slack")
T = TypeVar("T")

API_TIMEOUT = 15  # seconds per Slack call
RATE_LIMIT_WAIT = 10.0  # the SDK waits out shorter rate limits in place; longer ones go back to the outbox


class SlackContext:
    """What every Slack target shares: the Web API client, the database, the Oz client, a process identity.

    Build it inside the running event loop (it opens an HTTP session) and close it at shutdown.
    """

    def __init__(
        self, settings: SlackSettings, engine: AsyncEngine, metrics: Metrics, oz: AsyncOzAPI | None = None
    ) -> None:
        if settings.bot_token is None:
            raise ValueError("Slack targets need a bot token (SLACK_BOT_TOKEN)")
        self.settings, self.engine, self.metrics, self.oz = settings, engine, metrics, oz
        self.instance_id = uuid.uuid4().hex[:16]
        self.locks = KeyedLocks()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=API_TIMEOUT))
        handlers: list[AsyncRetryHandler] = [
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            BoundedRateLimitRetryHandler(max_retry_count=2, max_wait=RATE_LIMIT_WAIT),
        ]
        self.client = AsyncWebClient(
            token=settings.bot_token.get_secret_value(),
            base_url=settings.api_url,
            timeout=API_TIMEOUT,
            session=self._session,
            retry_handlers=handlers,
        )
        # Posting a status message must never be repeated blindly: a dropped connection or a 429 can
        # follow a post that took effect, and only the marker and history search know whether it did.
        self.once_client = AsyncWebClient(
            token=settings.bot_token.get_secret_value(),
            base_url=settings.api_url,
            timeout=API_TIMEOUT,
            session=self._session,
            retry_handlers=[],
        )
        self.people = CreatorDirectory(self.client, engine, metrics)
        self.artifacts = ArtifactTeller(self.client, oz, self._session, engine, metrics)
        self._thread_listeners: list[Callable[[str, str], None]] = []

    @property
    def session(self) -> aiohttp.ClientSession:
        """The HTTP session every Slack call of this process shares (downloads and uploads too)."""
        return self._session

    @property
    def token(self) -> str:
        assert self.settings.bot_token is not None
        return self.settings.bot_token.get_secret_value()

    def on_thread(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(channel id, thread ts)`` when this process makes a thread a bridge thread."""
        self._thread_listeners.append(listener)

    def thread_known(self, channel_id: str, thread_ts: str) -> None:
        for listener in self._thread_listeners:
            listener(channel_id, thread_ts)

    def notifier_for(self, target: SlackTarget) -> SlackNotifier:
        return SlackNotifier(self, target.channel)

    def thread_notifier(self) -> SlackNotifier:
        """The built-in target: runs told in the thread their metadata names."""
        return SlackNotifier(self, THREAD_PLACE)

    async def redraw(self, run: JSONDict) -> None:
        """Show ``run`` as it is now in every status message it has (after a cancel, mute or unmute)."""
        async with self.engine.connect() as conn:
            placements = await slack_placements.for_run(conn, str(run.get("run_id")))
        for placement in placements:
            if placement.is_posted:
                await SlackNotifier(self, placement.place).redraw(run, placement)

    async def transaction(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async with self.engine.begin() as conn:
            return await work(conn)

    async def close(self) -> None:
        await self._session.close()


class SlackNotifier:
    def __init__(self, context: SlackContext, place: str) -> None:
        self._context = context
        self._client = context.client
        self._place = place
        children_in_thread = context.settings.children == "thread"
        self._placer = Placer(context.engine, context.people, children_in_thread=children_in_thread, place=place)
        self._status = StatusMessages(
            context.client, context.once_client, context.engine, context.instance_id, self._render, context.thread_known
        )

    async def send(self, event: Event) -> Outcome:
        try:
            # Two targets may share a place: one of them posts the status message, the other finds it.
            async with self._context.locks.hold((event.run_id, self._place)):
                return await self._send(event)
        except SlackApiError as exc:
            return classify(exc)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The exception text may carry the URL or headers: say only its kind.
            return Outcome.retry(f"slack connection error ({type(exc).__name__})")

    async def close(self) -> None:
        """The client is shared; ``SlackContext.close`` releases it."""

    async def redraw(self, run: JSONDict, placement: SlackPlacement) -> None:
        """Refresh one status message; Slack errors are the caller's to handle."""
        async with self._context.locks.hold((placement.run_id, placement.place)):
            await self._status.refresh(run, placement)

    async def _load(self, run_id: str) -> SlackPlacement | None:
        async with self._context.engine.connect() as conn:
            return await slack_placements.load(conn, run_id, self._place)

    async def _send(self, event: Event) -> Outcome:
        if event.digest is not None:
            return await self._post_digest(event.digest)
        for _ in range(3):  # another delivery may win a race for the row: go again by its row
            placement = await self._load(event.run_id)
            if placement is not None and placement.is_posted:
                return await self._continue(event, placement)
            outcome = await self._start(event, placement)
            if outcome is not None:
                return outcome
        return Outcome.retry("slack placement kept changing under this delivery", retry_after=1.0)

    async def _start(self, event: Event, marker: SlackPlacement | None) -> Outcome | None:
        planned = _planned_from(marker) if marker is not None else await self._placer.plan(event)
        if isinstance(planned, Skip):
            return Outcome.done(f"not told here: {planned.reason}")
        if isinstance(planned, Wait):
            return Outcome.retry(planned.reason, retry_after=planned.seconds)
        result = await self._status.start(event, planned, marker)
        if not isinstance(result, Posted):
            return None if result == "again" else result
        await self._redraw_parent(planned.parent_run_id)
        if not result.for_event:
            return None  # found again: tell this event as a later one
        if not root_tells(event):
            posted = await self._load(event.run_id)
            if posted is not None and posted.is_posted:
                return await self._reply(event, posted)
        return Outcome.done(f"status message posted ({self._place})")

    async def _continue(self, event: Event, placement: SlackPlacement) -> Outcome:
        updated_at = updated_at_of(event.fields)
        # A late or replayed event must not roll the status message back to an older state.
        if placement.shown_updated_at is None or updated_at is None or updated_at > placement.shown_updated_at:
            if not await self._status.refresh(event.fields, placement):
                replaced = await self._status.replace(event, placement)
                return replaced if isinstance(replaced, Outcome) else Outcome.done("status message posted again")
            if placement.parent_run_id and placement.state != event.fields.get("state"):
                await self._redraw_parent(placement.parent_run_id)
        if placement.status_event_id == event.id and root_tells(event):
            return Outcome.done("the status message already tells this event")
        return await self._reply(event, placement)

    async def _reply(self, event: Event, placement: SlackPlacement) -> Outcome:
        assert placement.channel_id is not None and placement.thread_ts is not None
        if await self._silenced(placement):
            return Outcome.done("muted: status message updated, no reply")
        shown = await self._context.artifacts.tell(event, placement)
        if shown is not None:
            return shown
        text, blocks = thread_reply(event, await self._creator_user(event))
        await self._client.chat_postMessage(
            channel=placement.channel_id,
            thread_ts=placement.thread_ts,
            text=text,
            blocks=blocks,
            reply_broadcast=is_broadcast(event),
            unfurl_links=False,
            unfurl_media=False,
        )
        return Outcome.done(f"thread reply ({placement.channel_id} {placement.thread_ts})")

    async def _silenced(self, placement: SlackPlacement) -> bool:
        """Muted here, or a guest (a child run) in a thread whose owner is muted."""
        now = datetime.now(UTC)
        if placement.is_muted(now):
            return True
        if placement.owns_thread:
            return False
        assert placement.channel_id is not None and placement.thread_ts is not None
        async with self._context.engine.connect() as conn:
            host = await slack_placements.thread_owner(conn, placement.channel_id, placement.thread_ts)
        return host is not None and host.is_muted(now)

    async def _creator_user(self, event: Event) -> str | None:
        """A reminder names the creator: from the run's Slack metadata, else by email (cached)."""
        if event.type != RUN_STILL_BLOCKED or creator_mention(event.fields) is not None:
            return None
        try:
            return await self._context.people.creator_user(event.fields)
        except SlackApiError as exc:
            # The reminder matters more than the mention: say it without naming anyone.
            log.warning("reminder's creator not looked up", run_id=event.run_id, error=error_code(exc))
            return None

    async def _post_digest(self, digest: JSONDict) -> Outcome:
        """A digest is one message in the channel: no status message, no thread."""
        text, blocks = digest_message(digest)
        response = await self._client.chat_postMessage(
            channel=self._place, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
        )
        return Outcome.done(f"digest posted ({response['channel']} {response['ts']})")

    # ---- rendering and the parent's summary --------------------------------------------------------

    async def _render(self, run: JSONDict, placement: SlackPlacement | PlannedPlacement) -> tuple[str, list[Block]]:
        async with self._context.engine.connect() as conn:
            children = await slack_placements.children_states(conn, str(run.get("run_id")))
        muted = isinstance(placement, SlackPlacement) and placement.is_muted(datetime.now(UTC))
        return root_message(run, children=children, muted=muted)

    async def _redraw_parent(self, parent_run_id: str | None) -> None:
        """Best effort: the parent's next event redraws its status message anyway."""
        if parent_run_id is None:
            return
        async with self._context.engine.connect() as conn:
            parent = await run_store.load_run(conn, parent_run_id)
            homes = await slack_placements.for_run(conn, parent_run_id)
        for home in homes:
            if parent is None or not home.is_posted:
                continue
            try:
                async with self._context.locks.hold((parent_run_id, home.place)):
                    await self._status.refresh(parent, home)
            except SlackApiError as exc:
                log.warning("parent status message not redrawn", run_id=parent_run_id, error=error_code(exc))


def _planned_from(marker: SlackPlacement) -> PlannedPlacement:
    """The plan a marker was left for: a retry posts where the interrupted delivery meant to."""
    return PlannedPlacement(
        marker.run_id,
        marker.place,
        marker.kind,  # type: ignore[arg-type]
        marker.channel_id,
        marker.thread_ts,
        marker.owns_thread,
        marker.parent_run_id,
    )
