"""Run snapshots and the poll cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.diff import snapshot_of
from bridge.store import runs
from bridge.store.engine import _alembic_config, create_engine, migrate
from bridge.store.runs import Observed
from tests.conftest import make_run

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_the_start_point_is_fixed_on_first_boot_and_kept(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await runs.init_poll_state(conn, T0)
        again = await runs.init_poll_state(conn, T0 + timedelta(days=1))
    assert first.start_point == again.start_point == T0
    assert first.swept_through == T0  # nothing before the start point needs reading


async def test_the_cursor_only_moves_forward(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await runs.init_poll_state(conn, T0)
        await runs.advance_cursor(conn, T0 + timedelta(seconds=10))
        await runs.advance_cursor(conn, T0 + timedelta(seconds=5))
        state = await runs.load_poll_state(conn)
    assert state is not None and state.cursor == T0 + timedelta(seconds=10)


async def test_snapshots_keep_state_time_and_artifact_identities(engine: AsyncEngine) -> None:
    run = make_run("r1", state="INPROGRESS", updated_at="2026-01-01T00:00:10.123456Z")
    async with engine.begin() as conn:
        await runs.save_snapshot(conn, run, seen_at=T0)
        await runs.save_snapshot(conn, {**run, "state": "FAILED", "updated_at": "2026-01-01T00:00:11Z"}, seen_at=T0)
        snapshot = (await runs.load_snapshots(conn, ["r1", "absent"]))["r1"]
        stored = await runs.load_run(conn, "r1")
    assert snapshot.state == "FAILED"
    assert snapshot.updated_at == datetime(2026, 1, 1, 0, 0, 11, tzinfo=UTC)
    assert stored is not None and stored["state"] == "FAILED"


async def test_a_page_is_saved_in_one_upsert_and_an_older_observation_never_wins(engine: AsyncEngine) -> None:
    newer = make_run("r1", state="SUCCEEDED", updated_at="2026-01-01T00:00:20Z")
    older = make_run("r1", state="INPROGRESS", updated_at="2026-01-01T00:00:10Z")
    fresh = make_run("r2", state="QUEUED", updated_at="2026-01-01T00:00:15Z")
    async with engine.begin() as conn:
        await runs.save_snapshots(conn, [Observed(newer, snapshot_of(newer))], T0)
        # e.g. a second poller for a moment after a lapsed lease, holding an older page
        await runs.save_snapshots(conn, [Observed(older, snapshot_of(older)), Observed(fresh, snapshot_of(fresh))], T0)
        stored = await runs.load_snapshots(conn, ["r1", "r2"])
    assert (stored["r1"].state, stored["r2"].state) == ("SUCCEEDED", "QUEUED")


async def test_poll_outcomes_are_kept_for_every_replicas_readiness(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await runs.init_poll_state(conn, T0)
        await runs.record_poll_problem(conn, "the Oz API answered 503 to GET /agent/runs", -600.0)
        failed = await runs.load_poll_state(conn)
        await runs.record_poll_success(conn, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2), -599.5)
        ok = await runs.load_poll_state(conn)
    assert failed is not None and failed.last_problem == "the Oz API answered 503 to GET /agent/runs"
    assert failed.clock_offset == -600.0 and failed.last_success_at is None
    assert ok is not None and (ok.last_problem, ok.clock_offset) == (None, -599.5)
    assert ok.swept_through == T0 + timedelta(seconds=2)


async def test_upgrading_a_populated_database_keeps_the_cursor_and_sweeps_a_lookback_once(tmp_path: Path) -> None:
    db = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    async with db.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "0001"))
        await conn.execute(
            text("INSERT INTO poll_state (name, start_point, cursor, last_sweep_at) VALUES ('runs', :t, :c, :t)"),
            {"t": "2026-01-01 00:00:00.000000", "c": "2026-01-01 00:05:00.000000"},
        )
    await migrate(db)
    async with db.connect() as conn:
        state = await runs.load_poll_state(conn)
    await db.dispose()
    assert state is not None and state.cursor == T0 + timedelta(minutes=5)
    assert state.swept_through is None  # read as "one lookback behind the cursor" by the poller


async def test_a_hundred_snapshots_are_one_statement_on_either_database(engine: AsyncEngine) -> None:
    observed = [
        Observed(run, snapshot_of(run))
        for run in (make_run(f"r{i}", updated_at=f"2026-01-01T00:00:{i % 60:02d}Z") for i in range(100))
    ]
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement.split("(", 1)[0].strip().upper())

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with engine.begin() as conn:
            await runs.save_snapshots(conn, observed, T0)
            await runs.save_snapshots(conn, observed, T0)  # again: every row conflicts, none is newer
            stored = await runs.load_snapshots(conn, [f"r{i}" for i in range(100)])
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert statements.count("INSERT INTO RUNS") == 2 and len(stored) == 100
