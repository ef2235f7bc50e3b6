"""The inbox: every Slack request worth acting on, stored before Slack gets its 200.

A row is inserted once per Slack event id, and at most once per ``dedupe_key``
(one human message reaches us as both ``message`` and ``app_mention``); a second
insert of either is a no-op that tells the caller "duplicate". Workers claim due
rows with a lease, like the outbox, so any replica can act and a crashed one's
rows come back. Rows of one queue (a Slack thread) are handed out in the order
they were received, so follow-ups reach a run in the order they were written:
only a queue's oldest pending row carries ``head``, the flag moves on when that
row finishes, and a claim reads heads only, so it costs the same whatever the
backlog. Inserts come in batches (``store_many``), one transaction for all the
requests that arrived together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, BindParameter, and_, bindparam, delete, func, or_, select, text, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from bridge.store.tables import inbound_events

PENDING, DONE, FAILED = "pending", "done", "failed"
_t = inbound_events.c
_QUEUE_LOCK_SPACE = 0x6F7A  # advisory lock key space of inbox queues (PostgreSQL)
JSONDict = dict[str, Any]


def _p(name: str, **kwargs: Any) -> BindParameter[Any]:
    return bindparam(f"p_{name}", **kwargs)


# The statements of the hot path, built once: building and cache-keying a statement per call
# cost more than running it. Parameters are named p_… (column names are taken in SET clauses).
_INSERT = {
    name: dialect.insert(inbound_events).on_conflict_do_nothing().returning(_t.event_id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_head = inbound_events.alias("pending_head")
_QUEUE_HAS_NO_HEAD = ~(
    select(_head.c.event_id)
    .where(_head.c.queue_key == _t.queue_key, _head.c.status == PENDING, _head.c.head == true())
    .exists()
)
_MAKE_HEADS = (
    update(inbound_events).where(_t.event_id.in_(_p("ids", expanding=True)), _QUEUE_HAS_NO_HEAD).values(head=True)
)
_CLAIMABLE = or_(_t.claimed_until.is_(None), _t.claimed_until < _p("now"))
_DUE_HEADS = (
    select(inbound_events)
    .where(
        _t.head == true(),
        _t.status == PENDING,
        _t.next_attempt_at <= _p("now"),
        _CLAIMABLE,
    )
    .order_by(_t.next_attempt_at, _t.event_id)
    .limit(_p("limit"))
)
# Another replica's claim skips the rows this one holds, and the other way round.
_DUE_HEADS_LOCKED = _DUE_HEADS.with_for_update(skip_locked=True)
_CLAIM = (
    update(inbound_events)
    .where(_t.event_id.in_(_p("ids", expanding=True)))
    .values(claimed_by=_p("holder"), claimed_until=_p("until"))
)
_RECORD_OUTCOME = update(inbound_events).where(_t.event_id == _p("event_id")).values(outcome=_p("outcome", type_=JSON))
_FINISH = (
    update(inbound_events)
    .where(_t.event_id == _p("event_id"))
    .values(
        status=_p("status"),
        processed_at=_p("now"),
        attempts=_t.attempts + 1,
        last_error=_p("error"),
        claimed_by=None,
        claimed_until=None,
        head=False,
    )
    .returning(_t.queue_key)
)
_OLDEST_PENDING = (
    select(_t.event_id)
    .where(_t.queue_key == _p("queue"), _t.status == PENDING)
    .order_by(_t.received_at, _t.event_id)
    .limit(1)
    .scalar_subquery()
)
_PROMOTE = update(inbound_events).where(_t.event_id == _OLDEST_PENDING).values(head=True)
_RETRY = (
    update(inbound_events)
    .where(_t.event_id == _p("event_id"))
    .values(
        attempts=_t.attempts + 1,
        next_attempt_at=_p("at"),
        last_error=_p("error"),
        claimed_by=None,
        claimed_until=None,
    )
)


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
    return InboxRow(**{name: record._mapping[name] for name in InboxRow.__dataclass_fields__})


async def store(conn: AsyncConnection, entry: NewInboxEntry, now: datetime) -> bool:
    """Insert the entry; False when its event id or dedupe key is already there."""
    [stored] = await store_many(conn, [entry], now)
    return stored


async def store_many(conn: AsyncConnection, entries: Sequence[NewInboxEntry], now: datetime) -> list[bool]:
    """Insert entries in one go, in this order: a group commit's statements.

    For each entry, False when its event id or dedupe key is already in the table or
    earlier in ``entries``. The first new row of a queue with nothing pending becomes its head.
    """
    fresh = _first_of_each(entries)
    if not fresh:
        return [False] * len(entries)
    queues = sorted({key for i in fresh if (key := entries[i].queue_key) is not None})
    await _lock_queues(conn, queues)
    # received_at is when the row entered the inbox; a microsecond apart keeps the batch's order.
    rows = [_values(entries[i], now + timedelta(microseconds=n)) for n, i in enumerate(fresh)]
    # No conflict target: a clash on the primary key or on dedupe_key is the same "seen it".
    inserted = set((await conn.execute(_INSERT[conn.dialect.name], rows)).scalars())
    # The first new row of each queue becomes its head unless the queue already has one.
    firsts: dict[str, str] = {}
    for i in fresh:
        entry = entries[i]
        if entry.event_id in inserted and entry.queue_key is not None:
            firsts.setdefault(entry.queue_key, entry.event_id)
    if firsts:
        await conn.execute(_MAKE_HEADS, {"p_ids": list(firsts.values())})
    fresh_set = set(fresh)
    return [i in fresh_set and entry.event_id in inserted for i, entry in enumerate(entries)]


def _first_of_each(entries: Iterable[NewInboxEntry]) -> list[int]:
    """Positions of the entries not repeating an earlier one's event id or dedupe key."""
    ids: set[str] = set()
    keys: set[str] = set()
    first: list[int] = []
    for i, entry in enumerate(entries):
        if entry.event_id in ids or (entry.dedupe_key is not None and entry.dedupe_key in keys):
            continue
        ids.add(entry.event_id)
        if entry.dedupe_key is not None:
            keys.add(entry.dedupe_key)
        first.append(i)
    return first


def _values(entry: NewInboxEntry, received_at: datetime) -> dict[str, Any]:
    return {
        "event_id": entry.event_id,
        "kind": entry.kind,
        "payload": entry.payload,
        "status": PENDING,
        "attempts": 0,
        "received_at": received_at,
        "next_attempt_at": received_at,
        "dedupe_key": entry.dedupe_key,
        "queue_key": entry.queue_key,
        "head": entry.queue_key is None,
    }


async def _lock_queues(conn: AsyncConnection, queues: Sequence[str]) -> None:
    """Serialise head changes per queue across replicas; SQLite has a single writer anyway."""
    if conn.dialect.name != "postgresql" or not queues:
        return
    # The two-key form has a key space of its own; hashes are locked in one order, so no deadlock.
    await conn.execute(
        text(
            "SELECT pg_advisory_xact_lock(:space, h) FROM "
            "(SELECT DISTINCT hashtext(k) AS h FROM unnest(CAST(:keys AS text[])) AS k ORDER BY h) AS locks"
        ),
        {"space": _QUEUE_LOCK_SPACE, "keys": list(queues)},
    )


async def claim_due(conn: AsyncConnection, holder: str, now: datetime, limit: int, lease: timedelta) -> list[InboxRow]:
    """Claim up to ``limit`` due heads: each the oldest pending row of its queue."""
    query = _DUE_HEADS_LOCKED if conn.dialect.name == "postgresql" else _DUE_HEADS
    records = (await conn.execute(query, {"p_now": now, "p_limit": limit})).all()
    if records:
        ids = [r.event_id for r in records]
        await conn.execute(_CLAIM, {"p_ids": ids, "p_holder": holder, "p_until": now + lease})
    return [_row(record) for record in records]


async def record_outcome(conn: AsyncConnection, event_id: str, outcome: JSONDict) -> None:
    """Remember what acting on Oz came to, before anyone is told about it."""
    await conn.execute(_RECORD_OUTCOME, {"p_event_id": event_id, "p_outcome": outcome})


async def mark_done(conn: AsyncConnection, event_id: str, now: datetime) -> None:
    await _finish(conn, event_id, DONE, now, None)


async def mark_retry(conn: AsyncConnection, event_id: str, next_attempt_at: datetime, error: str) -> None:
    await conn.execute(_RETRY, {"p_event_id": event_id, "p_at": next_attempt_at, "p_error": error})


async def mark_failed(conn: AsyncConnection, event_id: str, now: datetime, error: str) -> None:
    await _finish(conn, event_id, FAILED, now, error)


async def _finish(conn: AsyncConnection, event_id: str, status: str, now: datetime, error: str | None) -> None:
    """A row's last attempt: its status, when, and why it failed (if it did); the claim ends
    and the next pending row of its queue becomes the head."""
    finished = await conn.execute(_FINISH, {"p_event_id": event_id, "p_status": status, "p_now": now, "p_error": error})
    queue = finished.scalar_one_or_none()
    if queue is not None:
        await _lock_queues(conn, [queue])
        await _promote(conn, queue)


async def _promote(conn: AsyncConnection, queue: str) -> None:
    """Make the oldest pending row of ``queue`` its head (a no-op when it already is)."""
    await conn.execute(_PROMOTE, {"p_queue": queue})


async def release_claims(conn: AsyncConnection, holder: str | None = None) -> int:
    """Give claimed rows back; all of them when ``holder`` is None (single replica start-up)."""
    condition: ColumnElement[bool] = _t.claimed_by.is_not(None)
    if holder is not None:
        condition = and_(condition, _t.claimed_by == holder)
    result = await conn.execute(update(inbound_events).where(condition).values(claimed_by=None, claimed_until=None))
    return int(result.rowcount or 0)


async def purge_finished(conn: AsyncConnection, before: datetime) -> int:
    """Forget rows finished before ``before``: long after Slack stopped retrying them."""
    result = await conn.execute(
        delete(inbound_events).where(
            _t.status.in_([DONE, FAILED]),
            _t.processed_at < before,
        )
    )
    return int(result.rowcount or 0)


async def repair_heads(conn: AsyncConnection) -> int:
    """Give a head back to every queue that has pending rows but none (a safety net, run now and then)."""
    headless = (
        select(_t.queue_key).where(_t.status == PENDING, _t.queue_key.is_not(None), _QUEUE_HAS_NO_HEAD).distinct()
    )
    queues = [str(queue) for queue in (await conn.execute(headless)).scalars()]
    for queue in queues:
        await _lock_queues(conn, [queue])
        await _promote(conn, queue)
    return len(queues)


async def get(conn: AsyncConnection, event_id: str) -> InboxRow | None:
    record = (await conn.execute(select(inbound_events).where(_t.event_id == event_id))).first()
    return _row(record) if record is not None else None


async def all_rows(conn: AsyncConnection, statuses: Sequence[str] | None = None) -> list[InboxRow]:
    query = select(inbound_events).order_by(_t.received_at, _t.event_id)
    if statuses:
        query = query.where(_t.status.in_(list(statuses)))
    return [_row(record) for record in await conn.execute(query)]


async def counts_by_status(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(select(_t.status, func.count()).group_by(_t.status))
    return {status: int(count) for status, count in rows}
