"""A run's status message: posted once per placement, crash-safely, then kept current in place.

Before a root or DM status message is posted a marker row is written, so a
retry after a crash looks for the message in the channel's history (by its
``oz_run`` message metadata) instead of posting a second one. A status message
inside an existing thread (a started thread, a parent's thread) is looked for
in that thread before every first post: that is also how it is found again
after the bridge's database was lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.events import Event, JSONDict
from bridge.logs import get_logger
from bridge.notifiers.base import Outcome
from bridge.notifiers.slack_errors import error_code
from bridge.notifiers.slack_messages import ROOT_EVENT_TYPE, root_metadata
from bridge.store import slack_placements
from bridge.store.slack_placements import THREAD_TOP_KINDS, PlannedPlacement, SlackPlacement

log = get_logger("bridge.notifiers.slack_status")
MARKER_STALE = timedelta(seconds=120)  # outlasts the slowest post (timeouts, retries); then its poster is gone
HISTORY_MARGIN = timedelta(minutes=5)  # clock skew between us and Slack when searching history
HISTORY_PAGES = 10
Render = Callable[[JSONDict, SlackPlacement | PlannedPlacement], Awaitable[tuple[str, list[Block]]]]
ThreadKnown = Callable[[str, str], None]  # (channel id, thread ts) became a bridge thread here


@dataclass(frozen=True)
class Posted:
    """The status message exists now; ``for_event`` when it was posted for the event being sent."""

    for_event: bool


StartResult = Posted | Outcome | Literal["again"]


def updated_at_of(run: JSONDict) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(run.get("updated_at")))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _is_status_of(message: dict[str, Any], run_id: str) -> bool:
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    return metadata.get("event_type") == ROOT_EVENT_TYPE and payload.get("run_id") == run_id


class StatusMessages:
    def __init__(
        self,
        client: AsyncWebClient,
        once_client: AsyncWebClient,
        engine: AsyncEngine,
        instance_id: str,
        render: Render,
        thread_known: ThreadKnown = lambda _channel, _ts: None,
    ) -> None:
        self._client = client
        # Status messages are posted without the SDK's in-place retries: after a dropped answer only
        # the marker and the history search can tell whether the post took effect.
        self._once_client = once_client
        self._engine = engine
        self._me = instance_id  # markers carry it: a marker of ours is a retry, not a peer still posting
        self._render = render
        self._thread_known = thread_known  # so this process's inbound knows the thread without asking

    async def _write(self, work: Callable[[AsyncConnection], Awaitable[Any]]) -> Any:
        async with self._engine.begin() as conn:
            return await work(conn)

    # ---- the first post ----------------------------------------------------------------------------

    async def start(self, event: Event, planned: PlannedPlacement, marker: SlackPlacement | None) -> StartResult:
        """Post (or find again) the status message of ``planned``."""
        if planned.kind not in THREAD_TOP_KINDS:
            assert planned.channel_id is not None and planned.thread_ts is not None
            found = await self._find_in_thread(planned.channel_id, planned.thread_ts, event.run_id)
            if found is not None:
                await self._reserve_quietly(planned, marker)
                await self._record(planned, found, None, None)
                log.info("found the run's status message in its thread", run_id=event.run_id, ts=found[1])
                return Posted(for_event=False)
        now = datetime.now(UTC)
        if marker is None:
            reserve = self._reserve(planned, event.id, now)
            return await self._post(event, planned) if await self._write(reserve) else "again"
        found = await self._find_in_history(marker, event.run_id)
        if found is not None:
            log.info("found the status message posted before an interrupted delivery", run_id=event.run_id, ts=found[1])
            await self._record(planned, found, None, None)
            return Posted(for_event=False)
        age = now - marker.created_at
        if marker.claimed_by != self._me and age < MARKER_STALE:
            return Outcome.retry(
                "slack status message being posted by another delivery", (MARKER_STALE - age).total_seconds()
            )

        async def take_over(conn: AsyncConnection) -> bool:
            return await slack_placements.take_over(conn, marker, claimed_by=self._me, event_id=event.id, now=now)

        if not await self._write(take_over):
            return Outcome.retry("slack status message claimed by another delivery", retry_after=1.0)
        return await self._post(event, planned)

    def _reserve(
        self, planned: PlannedPlacement, event_id: str | None, now: datetime
    ) -> Callable[[AsyncConnection], Awaitable[bool]]:
        async def reserve(conn: AsyncConnection) -> bool:
            reserved = await slack_placements.reserve(conn, planned, claimed_by=self._me, event_id=event_id, now=now)
            if reserved and planned.owns_thread and planned.channel_id and planned.thread_ts:
                self._thread_known(planned.channel_id, planned.thread_ts)  # a started thread: known from now
            return reserved

        return reserve

    async def _reserve_quietly(self, planned: PlannedPlacement, marker: SlackPlacement | None) -> None:
        if marker is None:
            # Found without a row (a lost database): the found message tells no particular event.
            await self._write(self._reserve(planned, None, datetime.now(UTC)))

    async def _post(self, event: Event, planned: PlannedPlacement) -> Posted:
        text, blocks = await self._render(event.fields, planned)
        response = await self._once_client.chat_postMessage(
            channel=planned.channel_id or planned.place,
            thread_ts=planned.thread_ts,
            text=text,
            blocks=blocks,
            metadata=root_metadata(event.run_id),
            unfurl_links=False,
            unfurl_media=False,
        )
        channel_id, ts = str(response["channel"]), str(response["ts"])
        await self._record(planned, (channel_id, ts), updated_at_of(event.fields), str(event.fields.get("state") or ""))
        return Posted(for_event=True)

    async def _record(
        self, planned: PlannedPlacement, found: tuple[str, str], shown: datetime | None, state: str | None
    ) -> None:
        channel_id, ts = found

        async def record(conn: AsyncConnection) -> None:
            await slack_placements.record_status(
                conn,
                planned.run_id,
                planned.place,
                channel_id=channel_id,
                status_ts=ts,
                shown_updated_at=shown,
                state=state,
            )

        await self._write(record)
        if planned.owns_thread:
            self._thread_known(channel_id, planned.thread_ts or ts)

    async def _find_in_thread(self, channel_id: str, thread_ts: str, run_id: str) -> tuple[str, str] | None:
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            page = await self._client.conversations_replies(
                channel=channel_id, ts=thread_ts, include_all_metadata=True, limit=200, cursor=cursor
            )
            for message in page.get("messages") or []:
                if message.get("ts") != thread_ts and _is_status_of(message, run_id):
                    return channel_id, str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    async def _find_in_history(self, marker: SlackPlacement, run_id: str) -> tuple[str, str] | None:
        """(channel id, ts) of a status message for ``run_id`` posted since ``marker`` was left."""
        if marker.channel_id is None:
            # Without an id (a channel given by name, never posted to) history can't be read.
            log.warning("cannot search the channel for an earlier status message", run_id=run_id, place=marker.place)
            return None
        oldest = f"{(marker.created_at - HISTORY_MARGIN).timestamp():.6f}"
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            page = await self._client.conversations_history(
                channel=marker.channel_id, oldest=oldest, include_all_metadata=True, limit=200, cursor=cursor
            )
            for message in page.get("messages") or []:
                if _is_status_of(message, run_id):
                    return marker.channel_id, str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return None

    # ---- later events ------------------------------------------------------------------------------

    async def refresh(self, run: JSONDict, placement: SlackPlacement) -> bool:
        """Show the run as it is now; ``False`` when the status message was deleted."""
        assert placement.channel_id is not None and placement.status_ts is not None
        text, blocks = await self._render(run, placement)
        try:
            await self._client.chat_update(
                channel=placement.channel_id,
                ts=placement.status_ts,
                text=text,
                blocks=blocks,
                metadata=root_metadata(placement.run_id),
            )
        except SlackApiError as exc:
            if error_code(exc) == "message_not_found":
                return False
            raise
        updated_at = updated_at_of(run)
        if updated_at is not None:
            state = str(run.get("state") or "")

            async def shown(conn: AsyncConnection) -> None:
                await slack_placements.record_shown(conn, placement.run_id, placement.place, updated_at, state)

            await self._write(shown)
        return True

    async def replace(self, event: Event, placement: SlackPlacement) -> Outcome | Posted:
        """Post the status message again after someone deleted it (once, across deliveries)."""
        now = datetime.now(UTC)

        async def reset(conn: AsyncConnection) -> bool:
            return await slack_placements.reset_status(conn, placement, claimed_by=self._me, event_id=event.id, now=now)

        if not await self._write(reset):
            return Outcome.retry("slack placement changed by another delivery", retry_after=1.0)
        log.warning("the status message was deleted; posting a new one", run_id=event.run_id, place=placement.place)
        thread_ts = None if placement.kind in THREAD_TOP_KINDS else placement.thread_ts
        planned = PlannedPlacement(
            placement.run_id,
            placement.place,
            placement.kind,  # type: ignore[arg-type]
            placement.channel_id,
            thread_ts,
            placement.owns_thread,
            placement.parent_run_id,
        )
        return await self._post(event, planned)
