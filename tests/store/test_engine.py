"""Engines and migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import JSON

from bridge.diff import diff_run
from bridge.store import outbox
from bridge.store.engine import MIGRATIONS, _alembic_config, async_url, create_engine, current_revision, migrate
from bridge.store.tables import UTCDateTime
from tests.conftest import make_run
from tests.pg import scratch_database
from tests.test_diff import NOW, START


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def test_contract_urls_get_their_async_drivers() -> None:
    assert async_url("sqlite:///data/bridge.db") == "sqlite+aiosqlite:///data/bridge.db"
    assert async_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"


async def test_replicas_starting_together_migrate_one_at_a_time() -> None:
    async with scratch_database() as url:
        engines = [create_engine(url) for _ in range(4)]
        await asyncio.gather(*(migrate(engine) for engine in engines))
        assert await current_revision(engines[0]) == head_revision()
        for engine in engines:
            await engine.dispose()


async def _upgrade_to(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), revision))


async def _outbox_of_revision_0001_delivers_after_upgrade(engine: AsyncEngine) -> None:
    """Rows queued by 0001 (run inside each payload, claims on the rows) keep their order and bodies."""
    await _upgrade_to(engine, "0001")
    now = datetime.now(UTC)
    a = diff_run(None, make_run("a"), START, NOW)
    b = diff_run(None, make_run("b", state="FAILED"), START, NOW)
    legacy = [
        {"event_id": e.id, "target": "t", "run_id": e.run_id, "event_type": e.type, "payload": e.to_payload(),
         "status": "pending", "attempts": 0, "enqueued_at": now, "next_attempt_at": now,
         "claimed_by": "old-worker" if e is b[0] else None,
         "claimed_until": now + timedelta(minutes=2) if e is b[0] else None}
        for e in a + b
    ]  # fmt: skip
    columns = ", ".join(legacy[0])
    values = ", ".join(f":{k}" for k in legacy[0])
    async with engine.begin() as conn:
        # The 0001 table, written as 0001 wrote it (today's table has other columns).
        statement = text(f"INSERT INTO outbox ({columns}) VALUES ({values})").bindparams(
            bindparam("payload", type_=JSON),
            bindparam("enqueued_at", type_=UTCDateTime()),
            bindparam("next_attempt_at", type_=UTCDateTime()),
            bindparam("claimed_until", type_=UTCDateTime()),
        )
        await conn.execute(statement, legacy)
    await migrate(engine)
    assert await current_revision(engine) == head_revision()
    async with engine.begin() as conn:
        heads = await conn.run_sync(outbox.claim, "w", "t", now, 10, timedelta(seconds=10))
        assert sorted(r.event_id for r in heads) == sorted([a[0].id, b[0].id])
        assert {r.event_id: r.event.to_payload() for r in heads} == {e.id: e.to_payload() for e in (a[0], b[0])}
        await conn.run_sync(outbox.settle, "w", [outbox.Settlement(r, "delivered", now) for r in heads], now)
        nexts = await conn.run_sync(outbox.claim, "w", "t", now, 10, timedelta(seconds=10))
    assert sorted(r.event_id for r in nexts) == sorted([a[1].id, b[1].id])


async def test_a_populated_sqlite_database_upgrades_and_delivers(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        await _outbox_of_revision_0001_delivers_after_upgrade(engine)
    finally:
        await engine.dispose()


async def test_a_populated_postgresql_database_upgrades_and_delivers() -> None:
    async with scratch_database() as url:
        engine = create_engine(url)
        try:
            await _outbox_of_revision_0001_delivers_after_upgrade(engine)
        finally:
            await engine.dispose()


async def test_a_transaction_run_in_one_hop_commits_all_or_nothing(engine: AsyncEngine) -> None:
    from sqlalchemy import select

    from bridge.store import leases
    from bridge.store.engine import TransactionRunner
    from bridge.store.tables import leases as leases_table

    now = datetime.now(UTC)
    runner = TransactionRunner(engine)

    def take_then_fail(conn: Any) -> None:
        leases.hold_in(conn, "half-done", "me", now, timedelta(seconds=5))
        raise RuntimeError("crash in the middle of the transaction")

    with pytest.raises(RuntimeError):
        await runner.run(take_then_fail)
    assert await runner.run(lambda conn: leases.hold_in(conn, "done", "me", now, timedelta(seconds=5)))
    await runner.close()
    async with engine.connect() as conn:
        names = (await conn.execute(select(leases_table.c.name))).scalars().all()
    assert names == ["done"]
