"""Store tests run on both backends: SQLite (always) and PostgreSQL (when it answers; required in CI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store.engine import create_engine, migrate
from tests.pg import scratch_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        db = create_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
        await migrate(db)
        yield db
        await db.dispose()
        return
    async with scratch_database() as url:
        db = create_engine(url)
        await migrate(db)
        yield db
        await db.dispose()
