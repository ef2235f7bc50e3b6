"""The outbox: every (event, target) pair waiting for, or done with, delivery.

Rows are written in the poller's page transaction and only ever marked
delivered after the target acknowledged them. Each (target, run) is a queue
whose oldest pending row is its head (``queue_heads``); only heads are handed
to workers, which keeps one run's events in order at one target. The run body
of an observation is stored once (``run_bodies``) and joined back at claim time.

The queries are plain (synchronous) SQLAlchemy, so the delivery worker can run a
whole claim-and-record cycle in one hop to the database (``engine.run_transaction``);
the ``async`` functions are the same queries for callers on an ``Connection``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, bindparam, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from bridge.events import Event, JSONDict
from bridge.logs import get_logger
from bridge.store import queue_heads, run_bodies
from bridge.store.run_bodies import BodyCache
from bridge.store.tables import outbox

log = get_logger(__name__)

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
# PostgreSQL NOTIFY channel: every replica's worker listens, so new work wakes them all.
WAKE_CHANNEL = "oz_bridge_outbox"
Step = Literal["delivered", "retry", "dead"]


@dataclass(frozen=True)
class OutboxRow:
    id: int
    event_id: str
    target: str
    run_id: str
    event_type: str
    payload: JSONDict  # the event as the webhook body has it, ``run`` joined from its stored body
    status: str
    attempts: int
    enqueued_at: datetime
    next_attempt_at: datetime
    last_error: str | None
    body_id: int | None = None

    @property
    def run(self) -> JSONDict | None:
        run: JSONDict | None = self.payload.get("run")
        return run

    @property
    def event(self) -> Event:
        return Event.from_payload(self.payload)


@dataclass(frozen=True)
class Settlement:
    """What became of one attempt, to be written back."""

    row: OutboxRow
    step: Step
    at: datetime
    retry_at: datetime | None = None
    error: str = ""


def _row(record: Any, run: JSONDict | None = None) -> OutboxRow:
    payload = dict(record.payload)
    if record.body_id is not None or "run" not in payload:  # rows before 0003 carry their run
        payload["run"] = run
    return OutboxRow(
        id=record.id,
        event_id=record.event_id,
        target=record.target,
        run_id=record.run_id,
        event_type=record.event_type,
        payload=payload,
        status=record.status,
        attempts=record.attempts,
        enqueued_at=record.enqueued_at,
        next_attempt_at=record.next_attempt_at,
        last_error=record.last_error,
        body_id=record.body_id,
    )


def wake_replicas(conn: Connection) -> None:
    """On PostgreSQL, tell every replica's worker (at commit) that there is work."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": WAKE_CHANNEL})


def enqueue_in(conn: Connection, deliveries: Sequence[tuple[Event, str]], now: datetime) -> None:
    """Queue each (event, target) once; a pair already queued is left as it is.

    Events of one observation share their run dict; its body is stored once.
    """
    if not deliveries:
        return
    body_ids = _store_bodies(conn, [event for event, _ in deliveries], now)
    rows = [
        {
            "event_id": event.id,
            "target": target,
            "run_id": event.run_id,
            "event_type": event.type,
            "payload": {k: v for k, v in event.to_payload().items() if k != "run"},
            "status": PENDING,
            "attempts": 0,
            "enqueued_at": now,
            "next_attempt_at": now,
            "body_id": body_ids.get(id(event.run)) if event.run is not None else None,
        }
        for event, target in deliveries
    ]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(outbox).on_conflict_do_nothing(index_elements=["event_id", "target"])
    inserted = (
        conn.execute(statement.returning(outbox.c.id, outbox.c.target, outbox.c.run_id, outbox.c.body_id), rows)
    ).all()
    queue_heads.offer(conn, _oldest_per_queue(inserted, now))
    unused = set(body_ids.values()) - {row.body_id for row in inserted}
    run_bodies.forget_unreferenced(conn, unused)  # every row was already queued
    if inserted:
        wake_replicas(conn)


def _oldest_per_queue(rows: Sequence[Any], due_at: datetime) -> dict[queue_heads.Queue, tuple[int, datetime]]:
    """Each queue's oldest row among ``rows`` (with ``id``, ``target``, ``run_id``), due at ``due_at``."""
    firsts: dict[queue_heads.Queue, tuple[int, datetime]] = {}
    for row in rows:
        queue = (row.target, row.run_id)
        if queue not in firsts or row.id < firsts[queue][0]:
            firsts[queue] = (row.id, due_at)
    return firsts


def _store_bodies(conn: Connection, events: Sequence[Event], now: datetime) -> dict[int, int]:
    """Store each distinct run object once; ``id(run)`` → body id."""
    runs: dict[int, tuple[str, JSONDict]] = {}
    for event in events:
        if event.run is not None and id(event.run) not in runs:
            runs[id(event.run)] = (event.run_id, event.run)
    keys = list(runs)
    ids = run_bodies.store(conn, [(runs[k][0], run_bodies.to_json(runs[k][1])) for k in keys], now)
    return dict(zip(keys, ids, strict=True))


def claim(
    conn: Connection,
    holder: str,
    target: str,
    now: datetime,
    limit: int,
    ttl: timedelta,
    bodies: BodyCache | None = None,
) -> list[OutboxRow]:
    """Claim up to ``limit`` due queue heads of ``target``, with their run bodies."""
    if conn.dialect.name == "postgresql":  # a round trip to the server, not a thread hop, is what costs
        records = conn.execute(queue_heads.claimed_rows(holder, target, now, limit, ttl)).all()
    else:
        head_ids = queue_heads.claim(conn, holder, target, now, limit, ttl)
        records = conn.execute(select(outbox).where(outbox.c.id.in_(head_ids))).all() if head_ids else []
    if not records:
        return []
    stale = [r for r in records if r.status != PENDING]
    if stale:  # settled by a worker whose claim had expired: move on
        queue_heads.advance(conn, holder, [r.id for r in stale])
    live = [r for r in records if r.status == PENDING]
    cache = bodies or BodyCache()
    found = cache.get_many(conn, {r.body_id for r in live if r.body_id is not None})
    bodiless = [r for r in live if r.body_id is not None and r.body_id not in found]
    if bodiless:  # never sent with ``run: null``: kept as a dead letter that names what is wrong
        _bury_bodiless(conn, holder, bodiless)
    buried = {r.id for r in bodiless}
    return [_row(r, found.get(r.body_id) if r.body_id is not None else None) for r in live if r.id not in buried]


def _bury_bodiless(conn: Connection, holder: str, records: Sequence[Any]) -> None:
    for record in records:
        log.error(
            "outbox row lost its run body; dead-lettered",
            run_id=record.run_id,
            event_id=record.event_id,
            target=record.target,
            body_id=record.body_id,
        )
    conn.execute(
        update(outbox)
        .where(outbox.c.id.in_([r.id for r in records]))
        .values(status=DEAD, last_error="the run body this event was detected on is missing", delivered_at=None)
    )
    queue_heads.advance(conn, holder, [r.id for r in records])


def settle(conn: Connection, holder: str, settlements: Sequence[Settlement], now: datetime) -> set[int]:
    """Write attempts back; finished heads move their queue on, failed ones wait for their retry.

    Returns the ids of the run bodies that delivered rows let go of: the caller forgets
    those nothing refers to any more (``run_bodies.forget_unreferenced``), now or in a
    later transaction.
    """
    delivered = [s for s in settlements if s.step == "delivered"]
    dead = [s for s in settlements if s.step == "dead"]
    retries = [s for s in settlements if s.step == "retry" and s.retry_at is not None]
    if delivered:
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_([s.row.id for s in delivered]))
            .values(
                status=DELIVERED,
                delivered_at=max(s.at for s in delivered),
                attempts=outbox.c.attempts + 1,
                last_error=None,
                body_id=None,
            )
        )
    if dead:
        _update_each(conn, dead, status=DEAD)
    if retries:
        _update_each(conn, retries, next_attempt_at=bindparam("b_retry_at"))
        queue_heads.wait(conn, holder, [(s.row.id, s.retry_at) for s in retries if s.retry_at])
    queue_heads.advance(conn, holder, [s.row.id for s in delivered + dead])
    return {s.row.body_id for s in delivered if s.row.body_id is not None}


def _update_each(conn: Connection, settlements: Sequence[Settlement], **values: Any) -> None:
    conn.execute(
        update(outbox)
        .where(outbox.c.id == bindparam("b_id"))
        .values(attempts=outbox.c.attempts + 1, last_error=bindparam("b_error"), **values),
        [
            {
                "b_id": s.row.id,
                "b_error": s.error,
                **({"b_retry_at": s.retry_at} if values.get("next_attempt_at") is not None else {}),
            }
            for s in settlements
        ],
    )


def release_claims_in(conn: Connection, holder: str | None = None, now: datetime | None = None) -> int:
    """Give claimed heads back, due now; all of them when ``holder`` is None (single replica start-up)."""
    released = queue_heads.release(conn, holder, now or datetime.now(UTC))
    if released:
        wake_replicas(conn)
    return released


def dead_letters_in(conn: Connection) -> list[OutboxRow]:
    rows = conn.execute(select(outbox).where(outbox.c.status == DEAD).order_by(outbox.c.id))
    return [_row(record) for record in rows]


def requeue_dead_in(conn: Connection, ids: Sequence[int] | None, now: datetime) -> int:
    """Put dead letters back in their queues as if just detected (fresh 24 h window)."""
    condition: ColumnElement[bool] = outbox.c.status == DEAD
    if ids:
        condition = and_(condition, outbox.c.id.in_(list(ids)))
    chosen = (conn.execute(select(outbox.c.id, outbox.c.target, outbox.c.run_id).where(condition))).all()
    if not chosen:
        return 0
    conn.execute(
        update(outbox)
        .where(outbox.c.id.in_([r.id for r in chosen]))
        .values(status=PENDING, attempts=0, enqueued_at=now, next_attempt_at=now)
    )
    queue_heads.offer(conn, _oldest_per_queue(chosen, now))
    wake_replicas(conn)
    return len(chosen)


def purge_delivered_in(conn: Connection, delivered_before: datetime) -> int:
    """Forget deliveries acknowledged before ``delivered_before``, and run bodies nothing refers to;
    dead letters stay until replayed."""
    result = conn.execute(delete(outbox).where(outbox.c.status == DELIVERED, outbox.c.delivered_at < delivered_before))
    run_bodies.forget_unreferenced(conn)
    return int(result.rowcount or 0)


def counts_by_status_in(conn: Connection) -> dict[tuple[str, str], int]:
    """(target, status) → number of rows, for the outbox-depth and dead-letter gauges."""
    rows = conn.execute(
        select(outbox.c.target, outbox.c.status, func.count())
        .where(outbox.c.status != DELIVERED)
        .group_by(outbox.c.target, outbox.c.status)
    )
    return {(target, status): int(count) for target, status, count in rows}


def rows_for_run_in(conn: Connection, run_id: str) -> list[OutboxRow]:
    """Every row of one run, oldest first, with the bodies still stored (delivered rows have none)."""
    records = (conn.execute(select(outbox).where(outbox.c.run_id == run_id).order_by(outbox.c.id))).all()
    bodies = BodyCache().get_many(conn, {r.body_id for r in records if r.body_id is not None})
    return [_row(r, bodies.get(r.body_id) if r.body_id is not None else None) for r in records]


# --- the same, for callers holding an AsyncConnection -------------------------------------


async def enqueue(conn: AsyncConnection, deliveries: Sequence[tuple[Event, str]], now: datetime) -> None:
    """Queue each (event, target) once; a pair already queued is left as it is.

    Events of one observation share their run dict; its body is stored once.
    """
    await conn.run_sync(enqueue_in, deliveries, now)


async def release_claims(conn: AsyncConnection, holder: str | None = None, now: datetime | None = None) -> int:
    """Give claimed heads back, due now; all of them when ``holder`` is None (single replica start-up)."""
    return await conn.run_sync(release_claims_in, holder, now)


async def dead_letters(conn: AsyncConnection) -> list[OutboxRow]:
    return await conn.run_sync(dead_letters_in)


async def requeue_dead(conn: AsyncConnection, ids: Sequence[int] | None, now: datetime) -> int:
    """Put dead letters back in their queues as if just detected (fresh 24 h window)."""
    return await conn.run_sync(requeue_dead_in, ids, now)


async def purge_delivered(conn: AsyncConnection, delivered_before: datetime) -> int:
    """Forget deliveries acknowledged before ``delivered_before``, and run bodies nothing refers to;
    dead letters stay until replayed."""
    return await conn.run_sync(purge_delivered_in, delivered_before)


async def counts_by_status(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    """(target, status) → number of rows, for the outbox-depth and dead-letter gauges."""
    return await conn.run_sync(counts_by_status_in)


async def rows_for_run(conn: AsyncConnection, run_id: str) -> list[OutboxRow]:
    """Every row of one run, oldest first, with the bodies still stored (delivered rows have none)."""
    return await conn.run_sync(rows_for_run_in, run_id)


# --- the outbox gauges --------------------------------------------------------------------


def gauge_counts_in(conn: Connection) -> dict[tuple[str, str], int]:
    """(target, status) → rows pending or dead, for the outbox-depth and dead-letter gauges.

    One equality on the leading column of ``ix_outbox_queue`` per status, grouped by its
    second: an index-only range of the pending and dead rows, never the delivered ones
    kept for ``delivery.retention`` (``status != 'delivered'`` read them all).
    """
    counts: dict[tuple[str, str], int] = {}
    for status in (PENDING, DEAD):
        rows = conn.execute(
            select(outbox.c.target, func.count()).where(outbox.c.status == status).group_by(outbox.c.target)
        )
        counts.update({(target, status): int(count) for target, count in rows})
    return counts


async def gauge_counts(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    """(target, status) → rows pending or dead, for the outbox-depth and dead-letter gauges."""
    return await conn.run_sync(gauge_counts_in)
