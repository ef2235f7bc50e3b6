"""The door of the durable inbox: a verified request is stored before Slack hears "ok".

Triage first, without the database (``prefilter``), then, for a thread reply,
whether the thread is the bridge's (``threads``, from memory or one shared
read). What can become a follow-up, a new run or a button action is inserted
keyed by Slack's event id (for a click: its trigger id), and by (channel, ts)
for messages; a second insert of either is a duplicate, acknowledged and never
acted on. A mention that asks for a run also records its message as a started
thread in the same transaction, so a reply there is the bridge's on every
replica from the moment Slack hears "ok". Requests arriving together are
written in one transaction (a group commit) and each is answered once its row
is committed; the worker acts later, so a crash after the acknowledgement
loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.inbound import actions, replies, starts
from bridge.inbound.batching import Batcher, GroupCommit
from bridge.inbound.prefilter import NO_STARTS, AsksForRun, Concern, Drop, InThread, StartChannels, concern_of
from bridge.inbound.request import ButtonClick, SlackMessage, SlackRequest, UnusableRequest
from bridge.inbound.threads import ThreadDirectory
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.store import inbox, slack_started
from bridge.store.inbox import NewInboxEntry
from bridge.store.slack_started import ThreadKey

Receipt = Literal["stored", "duplicate", "ignored", "unusable"]
log = get_logger("bridge.inbound.inbox")
_BATCH = 200  # rows per transaction; SQLite allows 32,766 bound parameters per statement


def entry_for(request: SlackMessage | ButtonClick, concern: Concern) -> NewInboxEntry:
    if isinstance(request, ButtonClick):
        return actions.inbox_entry(request)
    if isinstance(concern, AsksForRun):
        return starts.inbox_entry(request)
    return replies.inbox_entry(request)


@dataclass(frozen=True)
class Arrival:
    """One row to store, and the thread it starts when it asks for a run."""

    entry: NewInboxEntry
    started_thread: ThreadKey | None = None


class Intake:
    def __init__(
        self,
        writes: GroupCommit,
        directory: ThreadDirectory,
        metrics: Metrics,
        on_stored: Callable[[], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        starts: StartChannels = NO_STARTS,
    ) -> None:
        self._writes = writes
        self._directory = directory
        self._metrics = metrics
        self._on_stored = on_stored
        self._clock = clock
        self._starts = starts
        self._writer: Batcher[Arrival, bool | Exception] = Batcher(self._write, max_size=_BATCH)

    async def accept(self, request: SlackRequest) -> Receipt:
        """Store the request if it matters; raises only when the database fails (then do not ack)."""
        receipt = await self._receive(request)
        self._metrics.slack_inbound.labels(request.kind, receipt).inc()
        return receipt

    async def _receive(self, request: SlackRequest) -> Receipt:
        if isinstance(request, UnusableRequest):
            log.warning("unusable Slack request acknowledged and ignored", kind=request.kind, reason=request.reason)
            return "unusable"
        if not isinstance(request, SlackMessage | ButtonClick):
            return "ignored"
        concern = concern_of(request, self._starts)
        if isinstance(concern, Drop):
            return self._ignored(concern.reason)
        if isinstance(concern, InThread) and await self._directory.whose(*concern.key) == "foreign":
            return self._ignored("foreign_thread")
        started = (concern.channel, concern.ts) if isinstance(concern, AsksForRun) else None
        return "stored" if await self.store(entry_for(request, concern), started_thread=started) else "duplicate"

    async def store(self, entry: NewInboxEntry, *, started_thread: ThreadKey | None = None) -> bool:
        """Write ``entry`` with whatever else arrives meanwhile; True once committed, False for a duplicate.

        ``started_thread``: the entry asks for a run in that thread, recorded in the same transaction.
        """
        stored = await self._writer.submit(Arrival(entry, started_thread))
        if isinstance(stored, Exception):
            raise stored
        if started_thread is not None:
            self._directory.learn(*started_thread)  # a duplicate's thread was recorded by its original
        if stored:
            self._on_stored()
        return stored

    def _ignored(self, reason: str) -> Receipt:
        self._metrics.slack_ignored.labels(reason).inc()
        return "ignored"

    async def _write(self, batch: list[Arrival]) -> Sequence[bool | Exception]:
        now = self._clock()
        try:
            return await self._writes.run(lambda conn: _store_arrivals(conn, batch, now))
        except DBAPIError as exc:
            if len(batch) == 1 or exc.connection_invalidated:
                raise
        # One row the database refuses must not fail the requests that happened to arrive with it.
        return [await self._write_alone(item) for item in batch]

    async def _write_alone(self, arrival: Arrival) -> bool | Exception:
        now = self._clock()
        try:
            [stored] = await self._writes.run(lambda conn: _store_arrivals(conn, [arrival], now))
        except DBAPIError as exc:
            log.error(
                "the database refused an inbox row", inbox_event_id=arrival.entry.event_id, error=type(exc).__name__
            )
            return exc
        return stored


async def _store_arrivals(conn: AsyncConnection, batch: Sequence[Arrival], now: datetime) -> list[bool]:
    stored = await inbox.store_many(conn, [arrival.entry for arrival in batch], now)
    threads = [a.started_thread for a, new in zip(batch, stored, strict=True) if new and a.started_thread]
    await slack_started.record_requests(conn, threads, now)
    return stored
