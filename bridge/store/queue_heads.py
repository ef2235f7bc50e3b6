"""Queue heads: one row per (target, queue) with pending work, which is what workers claim.

A queue is one run's events for one target (a digest's for a digest); its head
is its oldest pending outbox row, and only the head is ever handed out, which
keeps each queue in order. Claiming reads this table through its
(target, due_at) index and takes at most as many heads as the worker has free
slots, so a claim costs the same with a hundred or a hundred thousand rows
pending. While a head is claimed, ``due_at`` is the claim's expiry: the holder
renews it while the send is in flight, and the heads of a holder that died
simply fall due again.

Concurrency on PostgreSQL: a writer that adds rows to a queue upserts its head
(locking it), and a worker that finishes a head locks it before looking for the
queue's next pending row, so the two never miss each other and no pending row is
ever left without a head.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, bindparam, case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bridge.store.tables import outbox
from bridge.store.tables import outbox_heads as heads

PENDING = "pending"
Queue = tuple[str, str]  # (target, queue key)


def offer(conn: Connection, firsts: dict[Queue, tuple[int, datetime]]) -> None:
    """Make each row the head of its queue, unless the queue has an older or a claimed head."""
    if not firsts:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(heads)
    newer = and_(heads.c.claimed_by.is_(None), statement.excluded.head_id < heads.c.head_id)
    # Always an update, never DO NOTHING: the upsert must lock the head (see the module doc).
    statement = statement.on_conflict_do_update(
        index_elements=[heads.c.target, heads.c.queue_key],
        set_={
            "head_id": case((newer, statement.excluded.head_id), else_=heads.c.head_id),
            "due_at": case((newer, statement.excluded.due_at), else_=heads.c.due_at),
        },
    )
    rows = [
        {"target": target, "queue_key": key, "head_id": head_id, "due_at": due_at, "claimed_by": None}
        for (target, key), (head_id, due_at) in sorted(firsts.items())
    ]
    conn.execute(statement, rows)


def _due(target: str, now: datetime, limit: int) -> Select[Any]:
    """Up to ``limit`` due heads of ``target``, oldest due first, skipping heads others hold locked."""
    return (
        select(heads.c.head_id)
        .where(heads.c.target == target, heads.c.due_at <= now)
        .order_by(heads.c.due_at, heads.c.head_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def claim(conn: Connection, holder: str, target: str, now: datetime, limit: int, ttl: timedelta) -> list[int]:
    """Claim up to ``limit`` due heads of ``target``, oldest due first; their outbox row ids."""
    head_ids = list((conn.execute(_due(target, now, limit))).scalars())
    if not head_ids:
        return []
    # By the heads' unique ids as parameters, not a subquery: whatever the statistics
    # say in the middle of a burst, PostgreSQL then updates through the unique index.
    won = conn.execute(
        update(heads)
        .where(heads.c.head_id.in_(head_ids))
        .values(claimed_by=holder, due_at=now + ttl)
        .returning(heads.c.head_id)
    )
    return [row.head_id for row in won]


def claimed_rows(holder: str, target: str, now: datetime, limit: int, ttl: timedelta) -> Select[Any]:
    """PostgreSQL: claim as ``claim`` does and read the claimed outbox rows, in one statement
    (one round trip instead of three). The claimed heads join back by their unique id."""
    due = _due(target, now, limit).cte("due")
    won = (
        update(heads)
        .where(heads.c.head_id == due.c.head_id)
        .values(claimed_by=holder, due_at=now + ttl)
        .returning(heads.c.head_id)
        .cte("won")
    )
    return select(outbox).join(won, outbox.c.id == won.c.head_id)


def renew(conn: Connection, holder: str, now: datetime, ttl: timedelta) -> int:
    """Extend every claim ``holder`` still has: it is alive and its sends are in flight."""
    result = conn.execute(update(heads).where(heads.c.claimed_by == holder).values(due_at=now + ttl))
    return int(result.rowcount or 0)


def release(conn: Connection, holder: str | None, now: datetime) -> int:
    """Hand claims back at once (all of them when ``holder`` is None: single replica start-up)."""
    condition = heads.c.claimed_by.is_not(None) if holder is None else heads.c.claimed_by == holder
    result = conn.execute(update(heads).where(condition).values(claimed_by=None, due_at=now))
    return int(result.rowcount or 0)


def wait(conn: Connection, holder: str, retries: Sequence[tuple[int, datetime]]) -> None:
    """Unclaim heads (by id) whose send failed, due again at their retry time."""
    if not retries:
        return
    conn.execute(
        update(heads)
        .where(heads.c.head_id == bindparam("b_head"), heads.c.claimed_by == holder)
        .values(due_at=bindparam("b_due"), claimed_by=None),
        [{"b_head": head, "b_due": due} for head, due in retries],
    )


def advance(conn: Connection, holder: str, finished: Sequence[int]) -> None:
    """Move each queue whose head (by id) ``holder`` finished to its next pending row, or
    drop it when empty. A head no longer held by ``holder`` (its claim expired and another
    worker took it) is left to that worker."""
    if not finished:
        return
    held = conn.execute(
        select(heads.c.target, heads.c.queue_key, heads.c.head_id)
        .where(heads.c.head_id.in_(list(finished)), heads.c.claimed_by == holder)
        .with_for_update()
    )
    by_target: dict[str, dict[str, int]] = defaultdict(dict)
    for row in held:
        by_target[row.target][row.queue_key] = row.head_id
    for target, queues in by_target.items():
        reseat(conn, target, queues)


def reseat(conn: Connection, target: str, queues: Mapping[str, int]) -> None:
    """Point these queues (key → current head id) at their oldest pending row, unclaimed and
    due when that row is; drop those with none left. Claims take the oldest due heads
    first, so across queues events go out in the order they were detected."""

    # Correlated "first pending row" lookups: equality on the whole queue index prefix,
    # so both databases seek it, whatever PostgreSQL's statistics say mid-burst (a
    # GROUP BY over the keys was planned as a scan of the target's every pending row).
    def first(column: Any) -> Any:
        return (
            select(column)
            .where(outbox.c.status == PENDING, outbox.c.target == heads.c.target, outbox.c.run_id == heads.c.queue_key)
            .order_by(outbox.c.id)
            .limit(1)
            .correlate(heads)
            .scalar_subquery()
        )

    found = conn.execute(
        select(
            heads.c.head_id, first(outbox.c.id).label("next_id"), first(outbox.c.next_attempt_at).label("due")
        ).where(heads.c.head_id.in_(list(queues.values())))
    )
    nexts = {row.head_id: (row.next_id, row.due) for row in found}
    empty = [head for head, (next_id, _) in nexts.items() if next_id is None]
    if empty:
        conn.execute(delete(heads).where(heads.c.head_id.in_(empty)))
    moved = [{"b_old": head, "b_head": nxt, "b_due": due} for head, (nxt, due) in nexts.items() if nxt is not None]
    if moved:
        conn.execute(
            update(heads)
            .where(heads.c.head_id == bindparam("b_old"))
            .values(head_id=bindparam("b_head"), due_at=bindparam("b_due"), claimed_by=None),
            moved,
        )


def targets(conn: Connection) -> list[str]:
    """Targets with any queue, configured or not (rows for a removed target must still drain)."""
    rows = conn.execute(select(heads.c.target).distinct())
    return sorted(row.target for row in rows)


def count(conn: Connection, target: str, cap: int) -> int:
    """How many queues ``target`` has, counted up to ``cap`` (so the cost stays bounded)."""
    some = select(heads.c.queue_key).where(heads.c.target == target).limit(cap).subquery()
    return int((conn.execute(select(func.count()).select_from(some))).scalar_one())
