"""Run snapshots and the poll cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store import runs
from tests.conftest import make_run

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_the_start_point_is_fixed_on_first_boot_and_kept(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await runs.init_poll_state(conn, T0)
        again = await runs.init_poll_state(conn, T0 + timedelta(days=1))
    assert first.start_point == again.start_point == T0


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
        await runs.save_snapshot(conn, run, known=False, seen_at=T0)
        await runs.save_snapshot(conn, {**run, "state": "FAILED"}, known=True, seen_at=T0)
        snapshot = (await runs.load_snapshots(conn, ["r1", "absent"]))["r1"]
        stored = await runs.load_run(conn, "r1")
    assert snapshot.state == "FAILED"
    assert snapshot.updated_at == datetime(2026, 1, 1, 0, 0, 10, 123456, tzinfo=UTC)
    assert stored is not None and stored["state"] == "FAILED"
