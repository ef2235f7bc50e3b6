"""The outbox: every (event, target) pair waiting for, or done with, delivery.

Rows are written in the poller's page transaction and only ever marked
delivered after the target acknowledged them. A row is handed to a worker
only while it is the oldest pending row of its (target, run) queue, which is
what keeps one run's events in order at one target.
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

from bridge.events import Event, JSONDict
from bridge.store.tables import outbox

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


@dataclass(frozen=True)
class OutboxRow:
    id: int
    event_id: str
    target: str
    run_id: str
    event_type: str
    payload: JSONDict
    status: str
    attempts: int
    enqueued_at: datetime
    next_attempt_at: datetime
    last_error: str | None

    @property
    def event(self) -> Event:
        return Event.from_payload(self.payload)


def _row(record: Any) -> OutboxRow:
    return OutboxRow(
        id=record.id,
        event_id=record.event_id,
        target=record.target,
        run_id=record.run_id,
        event_type=record.event_type,
        payload=record.payload,
        status=record.status,
        attempts=record.attempts,
        enqueued_at=record.enqueued_at,
        next_attempt_at=record.next_attempt_at,
        last_error=record.last_error,
    )


async def enqueue(conn: AsyncConnection, deliveries: Sequence[tuple[Event, str]], now: datetime) -> None:
    """Queue each (event, target) once; a pair already queued is left as it is."""
    if not deliveries:
        return
    rows = [
        {
            "event_id": event.id,
            "target": target,
            "run_id": event.run_id,
            "event_type": event.type,
            "payload": event.to_payload(),
            "status": PENDING,
            "attempts": 0,
            "enqueued_at": now,
            "next_attempt_at": now,
        }
        for event, target in deliveries
    ]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(outbox).on_conflict_do_nothing(index_elements=["event_id", "target"])
    await conn.execute(statement, rows)


async def pending_targets(conn: AsyncConnection) -> list[str]:
    """Targets with anything pending, configured or not (rows for a removed target must still drain)."""
    rows = await conn.execute(select(outbox.c.target).where(outbox.c.status == PENDING).distinct())
    return sorted(row.target for row in rows)


async def claim_due(
    conn: AsyncConnection, holder: str, now: datetime, limit: int, lease: timedelta, target: str | None = None
) -> list[OutboxRow]:
    """Claim up to ``limit`` queue heads that are due and not held by another worker
    (of one ``target`` when given)."""
    # One aggregate over the pending rows finds every queue's head. (A correlated
    # NOT EXISTS reads more naturally but lets PostgreSQL, before its statistics
    # catch up with a burst, pick a plan quadratic in the queue length.)
    queue_heads = (
        select(func.min(outbox.c.id).label("id"))
        .where(outbox.c.status == PENDING, *([outbox.c.target == target] if target is not None else []))
        .group_by(outbox.c.target, outbox.c.run_id)
        .subquery("queue_heads")
    )
    heads = (
        select(outbox)
        .join(queue_heads, queue_heads.c.id == outbox.c.id)
        .where(
            outbox.c.next_attempt_at <= now,
            or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now),
        )
        .order_by(outbox.c.id)
        .limit(limit)
    )
    candidates = {record.id: record for record in (await conn.execute(heads)).all()}
    if not candidates:
        return []
    # Another replica may have claimed some since the select: the update re-checks, and
    # RETURNING says which rows this worker actually won.
    won = await conn.execute(
        update(outbox)
        .where(
            outbox.c.id.in_(list(candidates)),
            outbox.c.status == PENDING,
            or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now),
        )
        .values(claimed_by=holder, claimed_until=now + lease)
        .returning(outbox.c.id)
    )
    won_ids = {row.id for row in won}
    return [_row(record) for row_id, record in candidates.items() if row_id in won_ids]


async def mark_delivered(conn: AsyncConnection, row_id: int, now: datetime) -> None:
    await mark_delivered_many(conn, [row_id], now)


async def mark_delivered_many(conn: AsyncConnection, row_ids: Sequence[int], now: datetime) -> None:
    await conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(list(row_ids)))
        .values(
            status=DELIVERED,
            delivered_at=now,
            attempts=outbox.c.attempts + 1,
            claimed_by=None,
            claimed_until=None,
            last_error=None,
        )
    )


async def mark_retry(conn: AsyncConnection, row_id: int, next_attempt_at: datetime, error: str) -> None:
    await conn.execute(
        update(outbox)
        .where(outbox.c.id == row_id)
        .values(
            attempts=outbox.c.attempts + 1,
            next_attempt_at=next_attempt_at,
            last_error=error,
            claimed_by=None,
            claimed_until=None,
        )
    )


async def mark_dead(conn: AsyncConnection, row_id: int, error: str) -> None:
    await conn.execute(
        update(outbox)
        .where(outbox.c.id == row_id)
        .values(status=DEAD, attempts=outbox.c.attempts + 1, last_error=error, claimed_by=None, claimed_until=None)
    )


async def release_claims(conn: AsyncConnection, holder: str | None = None) -> int:
    """Give claimed rows back; all of them when ``holder`` is None (single replica start-up)."""
    condition: ColumnElement[bool] = outbox.c.claimed_by.is_not(None)
    if holder is not None:
        condition = and_(condition, outbox.c.claimed_by == holder)
    result = await conn.execute(update(outbox).where(condition).values(claimed_by=None, claimed_until=None))
    return int(result.rowcount or 0)


async def dead_letters(conn: AsyncConnection) -> list[OutboxRow]:
    rows = await conn.execute(select(outbox).where(outbox.c.status == DEAD).order_by(outbox.c.id))
    return [_row(record) for record in rows]


async def requeue_dead(conn: AsyncConnection, ids: Sequence[int] | None, now: datetime) -> int:
    """Put dead letters back in their queues as if just detected (fresh 24 h window)."""
    condition: ColumnElement[bool] = outbox.c.status == DEAD
    if ids:
        condition = and_(condition, outbox.c.id.in_(list(ids)))
    result = await conn.execute(
        update(outbox)
        .where(condition)
        .values(status=PENDING, attempts=0, enqueued_at=now, next_attempt_at=now, claimed_until=None)
    )
    return int(result.rowcount or 0)


async def purge_delivered(conn: AsyncConnection, delivered_before: datetime) -> int:
    """Forget deliveries acknowledged before ``delivered_before``; dead letters stay until replayed."""
    result = await conn.execute(
        delete(outbox).where(outbox.c.status == DELIVERED, outbox.c.delivered_at < delivered_before)
    )
    return int(result.rowcount or 0)


async def counts_by_status(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    """(target, status) → number of rows, for the outbox-depth and dead-letter gauges."""
    rows = await conn.execute(
        select(outbox.c.target, outbox.c.status, func.count())
        .where(outbox.c.status != DELIVERED)
        .group_by(outbox.c.target, outbox.c.status)
    )
    return {(target, status): int(count) for target, status, count in rows}


async def rows_for_run(conn: AsyncConnection, run_id: str) -> list[OutboxRow]:
    rows = await conn.execute(select(outbox).where(outbox.c.run_id == run_id).order_by(outbox.c.id))
    return [_row(record) for record in rows]
