"""The door of the durable inbox: a verified request is stored before Slack hears "ok".

Whatever can become a follow-up or a button action is inserted keyed by Slack's
event id (for a click: its trigger id), and by (channel, ts) for messages; a
second insert of either is a duplicate, acknowledged and never acted on. The
worker acts later, so a crash after the acknowledgement loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbound import actions, replies
from bridge.inbound.request import SlackRequest
from bridge.metrics import Metrics
from bridge.store import inbox
from bridge.store.inbox import NewInboxEntry

Receipt = Literal["stored", "duplicate", "ignored"]


def entry_for(request: SlackRequest) -> NewInboxEntry | None:
    """The inbox entry for a request, or None when nothing could ever come of it."""
    if request.kind == "event_callback":
        return replies.inbox_entry(str(request.body["event_id"]), request.event)
    if request.kind == "block_actions":
        return actions.inbox_entry(request.body)
    return None


class Intake:
    def __init__(
        self,
        engine: AsyncEngine,
        metrics: Metrics,
        on_stored: Callable[[], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._metrics = metrics
        self._on_stored = on_stored
        self._clock = clock

    async def accept(self, request: SlackRequest) -> Receipt:
        """Store the request if it matters; raises only when the database fails (then do not ack)."""
        entry = entry_for(request)
        receipt: Receipt = "ignored"
        if entry is not None:
            async with self._engine.begin() as conn:
                stored = await inbox.store(conn, entry, self._clock())
            receipt = "stored" if stored else "duplicate"
        self._metrics.slack_inbound.labels(request.kind, receipt).inc()
        if receipt == "stored":
            self._on_stored()
        return receipt
