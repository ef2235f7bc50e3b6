"""Slack target: one root message per (run, channel), kept current, with a thread of changes.

The first event of a run posts the root; every later one updates the root in
place and replies in its thread (failures and blocks also to the channel).
A "root being posted" marker row is written before the root is posted, so a
retry after a crash looks for that root in the channel's history (by message
metadata) instead of posting a second one. This notifier only classifies
Slack's errors; when to retry is ``bridge.delivery``'s business.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.events import Event, JSONDict
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.notifiers.base import Outcome
from bridge.notifiers.slack_messages import (
    ROOT_EVENT_TYPE,
    is_broadcast,
    root_message,
    root_metadata,
    thread_reply,
)
from bridge.notifiers.webhook import parse_retry_after
from bridge.settings import SlackSettings, SlackTarget
from bridge.store import slack_threads
from bridge.store.slack_threads import SlackThread, ThreadRow

log = get_logger("bridge.notifiers.slack")
T = TypeVar("T")

API_TIMEOUT = 15  # seconds per Slack call
RATE_LIMIT_WAIT = 10.0  # the SDK waits out shorter rate limits in place; longer ones go back to the outbox
MARKER_STALE = timedelta(seconds=120)  # outlasts the slowest post (timeouts, retries); then its poster is gone
HISTORY_MARGIN = timedelta(minutes=5)  # clock skew between us and Slack when searching history
HISTORY_PAGES = 10
RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_ERROR_CODE = re.compile(r"^[a-z0-9_.]{1,64}$")


class BoundedRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """The SDK's rate-limit retry, but only for short waits: a long one should not hold a worker."""

    def __init__(self, max_retry_count: int, max_wait: float) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        values = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), [])
        wait = parse_retry_after(values[0] if values else None, datetime.now(UTC))
        return wait is None or wait <= self.max_wait


@dataclass
class _Holders:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    count: int = 0


class _KeyedLocks:
    """One asyncio lock per key, forgotten when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Holders] = {}

    @asynccontextmanager
    async def hold(self, key: tuple[str, str]) -> AsyncIterator[None]:
        holders = self._entries.setdefault(key, _Holders())
        holders.count += 1
        try:
            async with holders.lock:
                yield
        finally:
            holders.count -= 1
            if holders.count == 0:
                del self._entries[key]


class SlackContext:
    """What every Slack target shares: the Web API client, the database, a process identity.

    Build it inside the running event loop (it opens an HTTP session) and close it at shutdown.
    """

    def __init__(self, settings: SlackSettings, engine: AsyncEngine, metrics: Metrics) -> None:
        if settings.bot_token is None:
            raise ValueError("Slack targets need a bot token (SLACK_BOT_TOKEN)")
        self.settings, self.engine, self.metrics = settings, engine, metrics
        # Markers carry it: a marker of this process is a retry of ours, not a peer still posting.
        self.instance_id = uuid.uuid4().hex[:16]
        self.locks = _KeyedLocks()
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
        # Posting a root must never be repeated blindly: a dropped connection or a 429 can follow
        # a post that took effect, and only the marker and history search know whether it did.
        self.once_client = AsyncWebClient(
            token=settings.bot_token.get_secret_value(),
            base_url=settings.api_url,
            timeout=API_TIMEOUT,
            session=self._session,
            retry_handlers=[],
        )

    def notifier_for(self, target: SlackTarget) -> SlackNotifier:
        return SlackNotifier(self, target)

    async def transaction(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async with self.engine.begin() as conn:
            return await work(conn)

    async def close(self) -> None:
        await self._session.close()


def error_code(exc: SlackApiError) -> str:
    """Slack's error code, or the HTTP status; never anything echoing the request."""
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    code = str(data.get("error") or "")
    return code if _ERROR_CODE.match(code) else f"HTTP {exc.response.status_code}"


def classify(exc: SlackApiError) -> Outcome:
    """Whether a Slack API error is worth retrying; the code goes into the outbox's last_error."""
    status, code = exc.response.status_code, error_code(exc)
    detail = f"slack error: {code}"
    if status == 429 or code in ("ratelimited", "rate_limited"):
        headers: Any = exc.response.headers or {}
        value = next((str(v) for k, v in headers.items() if k.lower() == "retry-after"), None)
        return Outcome.retry(detail, retry_after=parse_retry_after(value, datetime.now(UTC)))
    if status >= 500 or code in RETRYABLE_ERRORS:
        return Outcome.retry(detail)
    return Outcome.permanent(detail)


def _updated_at(run: JSONDict) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(run.get("updated_at")))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class SlackNotifier:
    def __init__(self, context: SlackContext, target: SlackTarget) -> None:
        self._context = context
        self._client = context.client
        self._channel = target.channel

    async def send(self, event: Event) -> Outcome:
        try:
            # Two targets may share a channel: one of them posts the root, the other finds it.
            async with self._context.locks.hold((event.run_id, self._channel)):
                return await self._send(event)
        except SlackApiError as exc:
            return classify(exc)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The exception text may carry the URL or headers: say only its kind.
            return Outcome.retry(f"slack connection error ({type(exc).__name__})")

    async def close(self) -> None:
        """The client is shared; ``SlackContext.close`` releases it."""

    async def _send(self, event: Event) -> Outcome:
        row = await self._load(event.run_id)
        if row is not None and row.thread is not None:
            return await self._continue_thread(event, row, row.thread)
        return await self._start_thread(event, row)

    async def _load(self, run_id: str) -> ThreadRow | None:
        return await self._context.transaction(lambda conn: slack_threads.load(conn, run_id, self._channel))

    # ---- the root ----------------------------------------------------------------------------------

    async def _start_thread(self, event: Event, row: ThreadRow | None) -> Outcome:
        me, now = self._context.instance_id, datetime.now(UTC)
        if row is None:
            channel_id = await self._channel_id(None)

            async def reserve(conn: AsyncConnection) -> bool:
                return await slack_threads.reserve(
                    conn, event.run_id, self._channel, channel_id=channel_id, claimed_by=me, event_id=event.id, now=now
                )

            if await self._context.transaction(reserve):
                return await self._post_root(event)
            return await self._send(event)  # another replica got there first: go by its row
        found = await self._find_root(row, event.run_id)
        if found is not None:
            log.info("found the root posted before an interrupted delivery", run_id=event.run_id, ts=found)
            await self._record_root(event.run_id, *found, shown_updated_at=None)
            return await self._send(event)
        age = now - row.created_at
        if row.claimed_by != me and age < MARKER_STALE:
            return Outcome.retry("slack root being posted by another delivery", (MARKER_STALE - age).total_seconds())

        async def take_over(conn: AsyncConnection) -> bool:
            return await slack_threads.take_over(conn, row, claimed_by=me, event_id=event.id, now=now)

        if not await self._context.transaction(take_over):
            return Outcome.retry("slack root claimed by another delivery", retry_after=1.0)
        return await self._post_root(event)

    async def _post_root(self, event: Event) -> Outcome:
        text, blocks = root_message(event.run)
        response = await self._context.once_client.chat_postMessage(
            channel=self._channel,
            text=text,
            blocks=blocks,
            metadata=root_metadata(event.run_id),
            unfurl_links=False,
            unfurl_media=False,
        )
        channel_id, ts = str(response["channel"]), str(response["ts"])
        await self._record_root(event.run_id, channel_id, ts, shown_updated_at=_updated_at(event.run))
        return Outcome.done(f"root posted ({channel_id} {ts})")

    async def _record_root(self, run_id: str, channel_id: str, ts: str, *, shown_updated_at: datetime | None) -> None:
        async def record(conn: AsyncConnection) -> None:
            await slack_threads.record_root(
                conn, run_id, self._channel, channel_id=channel_id, ts=ts, shown_updated_at=shown_updated_at
            )

        await self._context.transaction(record)

    async def _channel_id(self, row: ThreadRow | None) -> str | None:
        if row is not None and row.channel_id:
            return row.channel_id
        if _CHANNEL_ID.match(self._channel):
            return self._channel
        return await self._context.transaction(lambda conn: slack_threads.known_channel_id(conn, self._channel))

    async def _find_root(self, marker: ThreadRow, run_id: str) -> tuple[str, str] | None:
        """(channel id, ts) of a root for ``run_id`` posted since ``marker`` was left, if any."""
        channel_id = await self._channel_id(marker)
        if channel_id is None:
            # Without an id (a channel given by name, never posted to) history can't be read.
            log.warning("cannot search the channel for an earlier root", run_id=run_id, channel=self._channel)
            return None
        oldest = f"{(marker.created_at - HISTORY_MARGIN).timestamp():.6f}"
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            page = await self._client.conversations_history(
                channel=channel_id, oldest=oldest, include_all_metadata=True, limit=200, cursor=cursor
            )
            for message in page.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == ROOT_EVENT_TYPE and payload.get("run_id") == run_id:
                    return channel_id, str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return None

    # ---- later events ------------------------------------------------------------------------------

    async def _continue_thread(self, event: Event, row: ThreadRow, thread: SlackThread) -> Outcome:
        updated_at = _updated_at(event.run)
        # A late or replayed event must not roll the root back to an older state.
        if row.shown_updated_at is None or updated_at is None or updated_at > row.shown_updated_at:
            if not await self._update_root(event, thread):
                return await self._replace_root(event, thread)
            if updated_at is not None:
                await self._context.transaction(
                    lambda conn: slack_threads.record_shown(conn, event.run_id, self._channel, updated_at)
                )
        if row.root_event_id == event.id:
            return Outcome.done("root already tells this event")
        text, blocks = thread_reply(event)
        await self._client.chat_postMessage(
            channel=thread.channel_id,
            thread_ts=thread.ts,
            text=text,
            blocks=blocks,
            reply_broadcast=is_broadcast(event),
            unfurl_links=False,
            unfurl_media=False,
        )
        return Outcome.done(f"thread reply ({thread.channel_id} {thread.ts})")

    async def _update_root(self, event: Event, thread: SlackThread) -> bool:
        """Show the run's current state in the root; ``False`` when the root was deleted."""
        text, blocks = root_message(event.run)
        try:
            await self._client.chat_update(
                channel=thread.channel_id, ts=thread.ts, text=text, blocks=blocks, metadata=root_metadata(event.run_id)
            )
        except SlackApiError as exc:
            if error_code(exc) == "message_not_found":
                return False
            raise
        return True

    async def _replace_root(self, event: Event, thread: SlackThread) -> Outcome:
        me, now = self._context.instance_id, datetime.now(UTC)

        async def reset(conn: AsyncConnection) -> bool:
            return await slack_threads.reset_root(conn, thread, claimed_by=me, event_id=event.id, now=now)

        if not await self._context.transaction(reset):
            return Outcome.retry("slack thread changed by another delivery", retry_after=1.0)
        log.warning("the root message was deleted; posting a new one", run_id=event.run_id, channel=self._channel)
        return await self._post_root(event)
