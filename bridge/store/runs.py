"""Run snapshots and the poll cursor: what the poller remembers between ticks.

A page's snapshots are written with one multi-row upsert; a snapshot only
ever replaces an older one (two pollers for a moment, after a lapsed lease,
can never roll a run back).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
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
    swept_through: datetime | None  # every update stamped at or before it has been read (API time)
    clock_offset: float | None  # API clock minus the polling replica's clock, seconds
    last_problem: str | None  # why the latest poll failed; None once one succeeds


@dataclass(frozen=True)
class Observed:
    """A run as the API sent it, with the snapshot the bridge keeps of it from now on."""

    run: JSONDict
    snapshot: RunSnapshot


def _dialect(conn: AsyncConnection) -> Any:
    return postgresql if conn.dialect.name == "postgresql" else sqlite


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


async def save_snapshots(conn: AsyncConnection, observed: Sequence[Observed], seen_at: datetime) -> None:
    """Insert or update every observed run in one multi-row statement; an older observation never wins."""
    if not observed:
        return
    rows = [
        {
            "run_id": item.snapshot.run_id,
            "state": item.snapshot.state,
            "updated_at": item.snapshot.updated_at,
            "artifact_keys": sorted(item.snapshot.artifact_keys),
            "run": item.run,
            "seen_at": seen_at,
        }
        for item in observed
    ]
    statement = _dialect(conn).insert(runs)
    fresh = statement.excluded
    upsert = statement.on_conflict_do_update(
        index_elements=[runs.c.run_id],
        set_={name: fresh[name] for name in ("state", "updated_at", "artifact_keys", "run", "seen_at")},
        where=runs.c.updated_at < fresh.updated_at,
    )
    # Executed with many parameter sets, SQLAlchemy sends one multi-row INSERT ("insertmanyvalues")
    # from one cached compilation, instead of building a statement with a bound value per cell.
    await conn.execute(upsert, rows)


async def save_snapshot(conn: AsyncConnection, run: JSONDict, seen_at: datetime) -> None:
    """One run's snapshot (tests and tools; the poller saves a page at a time)."""
    await save_snapshots(conn, [Observed(run, snapshot_of(run))], seen_at)


async def load_run(conn: AsyncConnection, run_id: str) -> JSONDict | None:
    row = (await conn.execute(select(runs.c.run).where(runs.c.run_id == run_id))).first()
    return dict(row.run) if row else None


async def load_poll_state(conn: AsyncConnection) -> PollState | None:
    row = (await conn.execute(select(poll_state).where(poll_state.c.name == CURSOR_NAME))).first()
    if row is None:
        return None
    return PollState(
        row.start_point, row.cursor, row.last_success_at, row.swept_through, row.clock_offset, row.last_problem
    )


async def init_poll_state(conn: AsyncConnection, start_point: datetime) -> PollState:
    """The first boot's start point, kept forever so restarts never re-announce."""
    existing = await load_poll_state(conn)
    if existing is not None:
        return existing
    # Replicas starting together may race here: the first insert wins, the others read it.
    await conn.execute(
        _dialect(conn)
        .insert(poll_state)
        .values(name=CURSOR_NAME, start_point=start_point, cursor=start_point, swept_through=start_point)
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


async def record_poll_success(
    conn: AsyncConnection, at: datetime, swept_through: datetime, clock_offset: float | None
) -> None:
    """A poll finished at ``at`` (the bridge's clock) and proved everything up to ``swept_through`` read."""
    await conn.execute(
        update(poll_state)
        .where(poll_state.c.name == CURSOR_NAME)
        .values(last_success_at=at, swept_through=swept_through, clock_offset=clock_offset, last_problem=None)
    )


async def record_poll_problem(conn: AsyncConnection, problem: str, clock_offset: float | None) -> None:
    """Why the latest poll failed, for every replica's ``/readyz``."""
    values: dict[str, Any] = {"last_problem": problem[:1000]}
    if clock_offset is not None:
        values["clock_offset"] = clock_offset
    await conn.execute(update(poll_state).where(poll_state.c.name == CURSOR_NAME).values(**values))
