"""What the scheduled job reads and writes: run watches, its cursor, digest sends, digest windows.

Every query is bounded: the job finds changed runs through ``runs.seen_at``
(its own cursor, re-read a margin behind for transactions that committed
late), the runs needing a look through ``run_watches.due_at``, and a digest's
runs through ``runs.updated_at``, in chunks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, false, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.events import TERMINAL_STATES, JSONDict
from bridge.schedule import StoredRun, Watch
from bridge.store.tables import UTCDateTime, digest_sends, run_watches, runs, schedule_state

STATE_NAME = "clock"


@dataclass(frozen=True)
class ScheduleState:
    seen_cursor: datetime
    policy: str


def _dialect(conn: AsyncConnection) -> Any:
    return postgresql if conn.dialect.name == "postgresql" else sqlite


async def load_state(conn: AsyncConnection) -> ScheduleState | None:
    row = (await conn.execute(select(schedule_state).where(schedule_state.c.name == STATE_NAME))).first()
    return ScheduleState(row.seen_cursor, row.policy) if row else None


async def save_state(conn: AsyncConnection, seen_cursor: datetime, policy: str) -> None:
    statement = _dialect(conn).insert(schedule_state).values(name=STATE_NAME, seen_cursor=seen_cursor, policy=policy)
    await conn.execute(
        statement.on_conflict_do_update(index_elements=["name"], set_={"seen_cursor": seen_cursor, "policy": policy})
    )


def _new_watch(run_id: Any, updated_at: Any, due_at: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "noticed_updated_at": updated_at,
        "reviewed_updated_at": None,
        "reminders_sent": 0,
        "stuck_told": False,
        "cost_told": False,
        "due_at": due_at,
    }


async def arm_unfinished(conn: AsyncConnection, due_at: datetime) -> None:
    """Make every run that has not ended due for a look (first start, or the settings changed)."""
    columns = list(_new_watch(None, None, None))
    unfinished = select(
        runs.c.run_id,
        runs.c.updated_at,
        literal(None, UTCDateTime()),
        literal(0),
        false(),
        false(),
        literal(due_at, UTCDateTime()),
    ).where(runs.c.state.not_in(sorted(TERMINAL_STATES)))
    statement = _dialect(conn).insert(run_watches).from_select(columns, unfinished)
    await conn.execute(statement.on_conflict_do_update(index_elements=["run_id"], set_={"due_at": due_at}))


async def notice_changes(conn: AsyncConnection, seen_since: datetime, due_at: datetime, limit: int) -> datetime | None:
    """Make runs that changed since the job last noticed them due; returns the newest ``seen_at`` noticed.

    Only runs seen at or after ``seen_since`` are read, at most ``limit`` of them, oldest first.
    """
    changed = (
        select(runs.c.run_id, runs.c.updated_at, runs.c.seen_at)
        .select_from(runs.outerjoin(run_watches, run_watches.c.run_id == runs.c.run_id))
        .where(
            runs.c.seen_at >= seen_since,
            or_(run_watches.c.run_id.is_(None), run_watches.c.noticed_updated_at != runs.c.updated_at),
        )
        .order_by(runs.c.seen_at, runs.c.run_id)
        .limit(limit)
    )
    rows = (await conn.execute(changed)).all()
    if not rows:
        return None
    # One order for every writer, so two replicas noticing the same runs cannot deadlock.
    values = [_new_watch(row.run_id, row.updated_at, due_at) for row in sorted(rows, key=lambda r: r.run_id)]
    statement = _dialect(conn).insert(run_watches)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["run_id"],
            set_={"noticed_updated_at": statement.excluded.noticed_updated_at, "due_at": due_at},
        ),
        values,
    )
    newest: datetime = max(row.seen_at for row in rows)
    return newest


async def due_watches(conn: AsyncConnection, as_of: datetime, limit: int) -> list[tuple[Watch, StoredRun]]:
    """Watches due by ``as_of`` with their run's snapshot, locked until commit (PostgreSQL).

    The lock is the "has the run moved on?" check: the poller cannot change the
    snapshot between this read and the commit of what is decided from it, and
    rows the poller is changing right now are skipped until the next tick.
    """
    query = (
        select(run_watches, runs.c.state, runs.c.updated_at, runs.c.run)
        .join(runs, runs.c.run_id == run_watches.c.run_id)
        .where(run_watches.c.due_at <= as_of)
        .order_by(run_watches.c.due_at, run_watches.c.run_id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=[run_watches, runs])
    )
    found = []
    for row in await conn.execute(query):
        watch = Watch(
            run_id=row.run_id,
            reviewed_updated_at=row.reviewed_updated_at,
            reminders_sent=row.reminders_sent,
            stuck_told=row.stuck_told,
            cost_told=row.cost_told,
            due_at=row.due_at,
        )
        found.append((watch, StoredRun(row.run_id, row.state, row.updated_at, dict(row.run))))
    return found


async def forget_orphans(conn: AsyncConnection, as_of: datetime, limit: int) -> None:
    """Drop due watches whose run snapshot is gone, so they never clog the due index."""
    orphans = (
        select(run_watches.c.run_id)
        .select_from(run_watches.outerjoin(runs, runs.c.run_id == run_watches.c.run_id))
        .where(run_watches.c.due_at <= as_of, runs.c.run_id.is_(None))
        .limit(limit)
    )
    ids = [row.run_id for row in await conn.execute(orphans)]
    if ids:
        await conn.execute(delete(run_watches).where(run_watches.c.run_id.in_(ids)))


async def save_watches(conn: AsyncConnection, watches: Sequence[Watch]) -> None:
    if not watches:
        return
    statement = (
        update(run_watches)
        .where(run_watches.c.run_id == bindparam("b_run_id"))
        .values(
            reviewed_updated_at=bindparam("b_reviewed"),
            reminders_sent=bindparam("b_reminders"),
            stuck_told=bindparam("b_stuck"),
            cost_told=bindparam("b_cost"),
            due_at=bindparam("b_due", type_=UTCDateTime()),
        )
    )
    rows = [
        {
            "b_run_id": w.run_id,
            "b_reviewed": w.reviewed_updated_at,
            "b_reminders": w.reminders_sent,
            "b_stuck": w.stuck_told,
            "b_cost": w.cost_told,
            "b_due": w.due_at,
        }
        for w in sorted(watches, key=lambda w: w.run_id)
    ]
    await conn.execute(statement, rows)


# ---- digests ---------------------------------------------------------------------------------------


async def last_scheduled(conn: AsyncConnection, name: str) -> datetime | None:
    """The latest scheduled time of digest ``name`` already handled (sent, or its first baseline)."""
    latest: datetime | None = await conn.scalar(
        select(func.max(digest_sends.c.scheduled_at)).where(digest_sends.c.name == name)
    )
    return latest


async def record_send(
    conn: AsyncConnection, name: str, scheduled_at: datetime, event_id: str | None, now: datetime
) -> bool:
    """Claim (digest, scheduled time); ``False`` when another replica or an earlier run already did."""
    statement = (
        _dialect(conn)
        .insert(digest_sends)
        .values(name=name, scheduled_at=scheduled_at, event_id=event_id, recorded_at=now)
        .on_conflict_do_nothing(index_elements=["name", "scheduled_at"])
    )
    result = await conn.execute(statement)
    return bool(result.rowcount)


async def runs_updated_after(
    conn: AsyncConnection, start: datetime, chunk: int = 500
) -> AsyncIterator[tuple[JSONDict, datetime]]:
    """Every stored run with ``updated_at`` after ``start``, a chunk at a time (memory stays bounded)."""
    after: tuple[datetime, str] | None = None
    while True:
        query = select(runs.c.run_id, runs.c.updated_at, runs.c.run).where(runs.c.updated_at > start)
        if after is not None:
            moment, run_id = after
            query = query.where(
                or_(runs.c.updated_at > moment, and_(runs.c.updated_at == moment, runs.c.run_id > run_id))
            )
        rows = (await conn.execute(query.order_by(runs.c.updated_at, runs.c.run_id).limit(chunk))).all()
        for row in rows:
            yield dict(row.run), row.updated_at
        if len(rows) < chunk:
            return
        after = (rows[-1].updated_at, rows[-1].run_id)
