"""The inbox: every Slack request worth acting on, stored before Slack gets its 200.

A row is inserted once per Slack event id, and at most once per ``dedupe_key``
(one human message reaches us as both ``message`` and ``app_mention``); a second
insert of either is a no-op that tells the caller "duplicate". Workers claim due
rows with a lease, like the outbox, so any replica can act and a crashed one's
rows come back. Rows of one queue (a Slack thread) are handed out in the order
they were received, so follow-ups reach a run in the order they were written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from bridge.store.tables import inbound_events

PENDING, DONE, FAILED = "pending", "done", "failed"
JSONDict = dict[str, Any]


@dataclass(frozen=True)
class NewInboxEntry:
    event_id: str
    kind: str
    payload: JSONDict
    dedupe_key: str | None = None
    queue_key: str | None = None


@dataclass(frozen=True)
class InboxRow:
    event_id: str
    kind: str
    payload: JSONDict
    status: str
    attempts: int
    received_at: datetime
    next_attempt_at: datetime
    processed_at: datetime | None
    last_error: str | None
    dedupe_key: str | None
    queue_key: str | None
    outcome: JSONDict | None


def _row(record: Any) -> InboxRow:
    return InboxRow(
        event_id=record.event_id,
        kind=record.kind,
        payload=record.payload,
        status=record.status,
        attempts=record.attempts,
        received_at=record.received_at,
        next_attempt_at=record.next_attempt_at,
        processed_at=record.processed_at,
        last_error=record.last_error,
        dedupe_key=record.dedupe_key,
        queue_key=record.queue_key,
        outcome=record.outcome,
    )


async def store(conn: AsyncConnection, entry: NewInboxEntry, now: datetime) -> bool:
    """Insert the entry; False when its event id or dedupe key is already there."""
    values = {
        "event_id": entry.event_id,
        "kind": entry.kind,
        "payload": entry.payload,
        "status": PENDING,
        "attempts": 0,
        "received_at": now,
        "next_attempt_at": now,
        "dedupe_key": entry.dedupe_key,
        "queue_key": entry.queue_key,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    # No conflict target: a clash on the primary key or on dedupe_key is the same "seen it".
    statement = dialect.insert(inbound_events).values(values).on_conflict_do_nothing()
    result = await conn.execute(statement)
    return bool(result.rowcount == 1)


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(inbound_events.c.claimed_until.is_(None), inbound_events.c.claimed_until < now)


async def claim_due(conn: AsyncConnection, holder: str, now: datetime, limit: int, lease: timedelta) -> list[InboxRow]:
    """Claim up to ``limit`` due rows, each the oldest pending one of its queue."""
    earlier = inbound_events.alias("earlier")
    earlier_pending = (
        select(earlier.c.event_id)
        .where(
            earlier.c.status == PENDING,
            earlier.c.queue_key == inbound_events.c.queue_key,
            or_(
                earlier.c.received_at < inbound_events.c.received_at,
                and_(
                    earlier.c.received_at == inbound_events.c.received_at,
                    earlier.c.event_id < inbound_events.c.event_id,
                ),
            ),
        )
        .exists()
    )
    heads = (
        select(inbound_events)
        .where(
            inbound_events.c.status == PENDING,
            inbound_events.c.next_attempt_at <= now,
            _claimable(now),
            or_(inbound_events.c.queue_key.is_(None), ~earlier_pending),
        )
        .order_by(inbound_events.c.received_at, inbound_events.c.event_id)
        .limit(limit)
    )
    claimed: list[InboxRow] = []
    for record in (await conn.execute(heads)).all():
        # Another replica may have claimed it since the select: only one update wins.
        result = await conn.execute(
            update(inbound_events)
            .where(
                inbound_events.c.event_id == record.event_id,
                inbound_events.c.status == PENDING,
                _claimable(now),
            )
            .values(claimed_by=holder, claimed_until=now + lease)
        )
        if result.rowcount == 1:
            claimed.append(_row(record))
    return claimed


async def record_outcome(conn: AsyncConnection, event_id: str, outcome: JSONDict) -> None:
    """Remember what acting on Oz came to, before anyone is told about it."""
    await conn.execute(update(inbound_events).where(inbound_events.c.event_id == event_id).values(outcome=outcome))


async def mark_done(conn: AsyncConnection, event_id: str, now: datetime) -> None:
    await _finish(conn, event_id, DONE, now, None)


async def mark_retry(conn: AsyncConnection, event_id: str, next_attempt_at: datetime, error: str) -> None:
    await conn.execute(
        update(inbound_events)
        .where(inbound_events.c.event_id == event_id)
        .values(
            attempts=inbound_events.c.attempts + 1,
            next_attempt_at=next_attempt_at,
            last_error=error,
            claimed_by=None,
            claimed_until=None,
        )
    )


async def mark_failed(conn: AsyncConnection, event_id: str, now: datetime, error: str) -> None:
    await _finish(conn, event_id, FAILED, now, error)


async def _finish(conn: AsyncConnection, event_id: str, status: str, now: datetime, error: str | None) -> None:
    """A row's last attempt: its status, when, and why it failed (if it did); the claim ends."""
    await conn.execute(
        update(inbound_events)
        .where(inbound_events.c.event_id == event_id)
        .values(
            status=status,
            processed_at=now,
            attempts=inbound_events.c.attempts + 1,
            last_error=error,
            claimed_by=None,
            claimed_until=None,
        )
    )


async def release_claims(conn: AsyncConnection, holder: str | None = None) -> int:
    """Give claimed rows back; all of them when ``holder`` is None (single replica start-up)."""
    condition: ColumnElement[bool] = inbound_events.c.claimed_by.is_not(None)
    if holder is not None:
        condition = and_(condition, inbound_events.c.claimed_by == holder)
    result = await conn.execute(update(inbound_events).where(condition).values(claimed_by=None, claimed_until=None))
    return int(result.rowcount or 0)


async def purge_finished(conn: AsyncConnection, before: datetime) -> int:
    """Forget rows finished before ``before``: long after Slack stopped retrying them."""
    result = await conn.execute(
        delete(inbound_events).where(
            inbound_events.c.status.in_([DONE, FAILED]),
            inbound_events.c.processed_at < before,
        )
    )
    return int(result.rowcount or 0)


async def get(conn: AsyncConnection, event_id: str) -> InboxRow | None:
    record = (await conn.execute(select(inbound_events).where(inbound_events.c.event_id == event_id))).first()
    return _row(record) if record is not None else None


async def all_rows(conn: AsyncConnection, statuses: Sequence[str] | None = None) -> list[InboxRow]:
    query = select(inbound_events).order_by(inbound_events.c.received_at, inbound_events.c.event_id)
    if statuses:
        query = query.where(inbound_events.c.status.in_(list(statuses)))
    return [_row(record) for record in await conn.execute(query)]


async def counts_by_status(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(select(inbound_events.c.status, func.count()).group_by(inbound_events.c.status))
    return {status: int(count) for status, count in rows}
