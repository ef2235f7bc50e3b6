"""Run snapshots and the poll cursor: what the poller remembers between ticks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.diff import RunSnapshot, snapshot_of
from bridge.events import JSONDict
from bridge.store.tables import poll_state, runs

CURSOR_NAME = "runs"


@dataclass(frozen=True)
class PollState:
    start_point: datetime
    cursor: datetime
    last_success_at: datetime | None
    last_sweep_at: datetime | None


async def load_snapshots(conn: AsyncConnection, run_ids: Iterable[str]) -> dict[str, RunSnapshot]:
    ids = list(set(run_ids))
    if not ids:
        return {}
    rows = await conn.execute(
        select(runs.c.run_id, runs.c.state, runs.c.updated_at, runs.c.artifact_keys).where(runs.c.run_id.in_(ids))
    )
    return {
        row.run_id: RunSnapshot(row.run_id, row.state, row.updated_at, frozenset(row.artifact_keys)) for row in rows
    }


async def save_snapshot(conn: AsyncConnection, run: JSONDict, known: bool, seen_at: datetime) -> None:
    snapshot = snapshot_of(run)
    values = {
        "state": snapshot.state,
        "updated_at": snapshot.updated_at,
        "artifact_keys": sorted(snapshot.artifact_keys),
        "run": run,
        "seen_at": seen_at,
    }
    if known:
        await conn.execute(update(runs).where(runs.c.run_id == snapshot.run_id).values(**values))
    else:
        await conn.execute(insert(runs).values(run_id=snapshot.run_id, **values))


async def load_run(conn: AsyncConnection, run_id: str) -> JSONDict | None:
    row = (await conn.execute(select(runs.c.run).where(runs.c.run_id == run_id))).first()
    return dict(row.run) if row else None


async def load_poll_state(conn: AsyncConnection) -> PollState | None:
    row = (await conn.execute(select(poll_state).where(poll_state.c.name == CURSOR_NAME))).first()
    if row is None:
        return None
    return PollState(row.start_point, row.cursor, row.last_success_at, row.last_sweep_at)


async def init_poll_state(conn: AsyncConnection, start_point: datetime) -> PollState:
    """The first boot's start point, kept forever so restarts never re-announce."""
    existing = await load_poll_state(conn)
    if existing is not None:
        return existing
    # Replicas starting together may race here: the first insert wins, the others read it.
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    await conn.execute(
        dialect.insert(poll_state)
        .values(name=CURSOR_NAME, start_point=start_point, cursor=start_point)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    state = await load_poll_state(conn)
    assert state is not None
    return state


async def advance_cursor(conn: AsyncConnection, newest_updated_at: datetime) -> None:
    """Move the cursor forward, never back (a sweep page may hold older runs)."""
    await conn.execute(
        update(poll_state)
        .where(poll_state.c.name == CURSOR_NAME, poll_state.c.cursor < newest_updated_at)
        .values(cursor=newest_updated_at)
    )


async def record_poll_success(conn: AsyncConnection, at: datetime, sweep_started_at: datetime | None) -> None:
    """A poll finished at ``at``; if it was a sweep, remember when that sweep began."""
    values: dict[str, datetime] = {"last_success_at": at}
    if sweep_started_at is not None:
        values["last_sweep_at"] = sweep_started_at
    await conn.execute(update(poll_state).where(poll_state.c.name == CURSOR_NAME).values(**values))
