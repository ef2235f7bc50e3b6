"""Engines and migrations."""

from __future__ import annotations

import asyncio

from alembic.script import ScriptDirectory

from bridge.store.engine import MIGRATIONS, async_url, create_engine, current_revision, migrate
from tests.pg import scratch_database


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


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
