"""The door of the durable inbox: a verified request is stored before Slack hears "ok".

Triage first, without the database (``prefilter``), then, for a thread reply,
whether the thread is the bridge's (``threads``, from memory or one shared
read). What can become a follow-up or a button action is inserted keyed by
Slack's event id (for a click: its trigger id), and by (channel, ts) for
messages; a second insert of either is a duplicate, acknowledged and never
acted on. Requests arriving together are written in one transaction (a group
commit) and each is answered once its row is committed; the worker acts
later, so a crash after the acknowledgement loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.exc import DBAPIError

from bridge.inbound import actions, replies
from bridge.inbound.batching import Batcher, GroupCommit
from bridge.inbound.prefilter import Drop, InThread, concern_of
from bridge.inbound.request import ButtonClick, SlackMessage, SlackRequest, UnusableRequest
from bridge.inbound.threads import ThreadDirectory
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.store import inbox
from bridge.store.inbox import NewInboxEntry

Receipt = Literal["stored", "duplicate", "ignored", "unusable"]
log = get_logger("bridge.inbound.inbox")
_BATCH = 200  # rows per transaction; SQLite allows 32,766 bound parameters per statement


def entry_for(request: SlackMessage | ButtonClick) -> NewInboxEntry:
    if isinstance(request, SlackMessage):
        return replies.inbox_entry(request)
    return actions.inbox_entry(request)


class Intake:
    def __init__(
        self,
        writes: GroupCommit,
        directory: ThreadDirectory,
        metrics: Metrics,
        on_stored: Callable[[], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._writes = writes
        self._directory = directory
        self._metrics = metrics
        self._on_stored = on_stored
        self._clock = clock
        self._writer: Batcher[NewInboxEntry, bool | Exception] = Batcher(self._write, max_size=_BATCH)

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
        concern = concern_of(request)
        if isinstance(concern, Drop):
            return self._ignored(concern.reason)
        if isinstance(concern, InThread):
            answer = await self._directory.whose(concern.channel, concern.thread_ts)
            if answer.whose == "foreign":
                return self._ignored("foreign_thread")
        return "stored" if await self.store(entry_for(request)) else "duplicate"

    async def store(self, entry: NewInboxEntry) -> bool:
        """Write ``entry`` with whatever else arrives meanwhile; True once committed, False for a duplicate."""
        stored = await self._writer.submit(entry)
        if isinstance(stored, Exception):
            raise stored
        if stored:
            self._on_stored()
        return stored

    def _ignored(self, reason: str) -> Receipt:
        self._metrics.slack_ignored.labels(reason).inc()
        return "ignored"

    async def _write(self, batch: list[NewInboxEntry]) -> Sequence[bool | Exception]:
        now = self._clock()
        try:
            return await self._writes.run(lambda conn: inbox.store_many(conn, batch, now))
        except DBAPIError as exc:
            if len(batch) == 1 or exc.connection_invalidated:
                raise
        # One row the database refuses must not fail the requests that happened to arrive with it.
        return [await self._write_alone(item) for item in batch]

    async def _write_alone(self, entry: NewInboxEntry) -> bool | Exception:
        now = self._clock()
        try:
            stored = await self._writes.run(lambda conn: inbox.store(conn, entry, now))
        except DBAPIError as exc:
            log.error("the database refused an inbox row", inbox_event_id=entry.event_id, error=type(exc).__name__)
            return exc
        return stored
