"""Migration 0004 on a database that already holds inbox rows: each waiting thread gets its head."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store import inbox
from bridge.store.engine import _alembic_config, create_engine, migrate
from tests.pg import scratch_database

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def old_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A database at revision 0001, before inbox heads existed."""
    if request.param == "sqlite":
        db = create_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
        await _upgrade_to(db, "0001")
        yield db
        await db.dispose()
        return
    async with scratch_database() as url:
        db = create_engine(url)
        await _upgrade_to(db, "0001")
        yield db
        await db.dispose()


async def _upgrade_to(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), revision))


async def test_upgrade_marks_the_oldest_pending_row_of_each_queue(old_engine: AsyncEngine) -> None:
    rows = [
        ("Ev-a1", "thread:C1:1", "done", 0),
        ("Ev-a2", "thread:C1:1", "pending", 1),
        ("Ev-a3", "thread:C1:1", "pending", 2),
        ("Ev-b1", "thread:C1:2", "pending", 3),
        ("action:t1", None, "pending", 4),
        ("action:t2", None, "failed", 5),
    ]
    async with old_engine.begin() as conn:
        for event_id, queue, status, offset in rows:
            at = (T0 + timedelta(seconds=offset)).replace(tzinfo=None)
            await conn.execute(
                text(
                    "INSERT INTO inbound_events (event_id, kind, payload, status, attempts, received_at,"
                    " next_attempt_at, queue_key) VALUES (:id, 'message', '{}', :status, 0, :at, :at, :queue)"
                ),
                {"id": event_id, "status": status, "at": at, "queue": queue},
            )
    await migrate(old_engine)

    async with old_engine.begin() as conn:
        claimed = await inbox.claim_due(conn, "w", T0 + timedelta(minutes=1), 10, timedelta(minutes=1))
        assert [row.event_id for row in claimed] == ["Ev-a2", "Ev-b1", "action:t1"]
        await inbox.mark_done(conn, "Ev-a2", T0)
        claimed = await inbox.claim_due(conn, "w", T0 + timedelta(minutes=1), 10, timedelta(minutes=1))
        assert [row.event_id for row in claimed] == ["Ev-a3"]


async def test_downgrade_and_upgrade_again(old_engine: AsyncEngine) -> None:
    await migrate(old_engine)
    await _downgrade_to(old_engine, "0001")
    await migrate(old_engine)


async def _downgrade_to(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(_alembic_config(sync), revision))
