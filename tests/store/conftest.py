"""Store tests run on both backends: SQLite (always) and PostgreSQL (when it answers; required in CI)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store.engine import create_engine, migrate

PG_ADMIN = os.environ.get("OZ_BRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _scratch_database() -> str | None:
    try:
        admin = await asyncpg.connect(PG_ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        if os.environ.get("CI"):
            raise
        return None
    name = f"ozb_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return name


async def _drop_database(name: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN, timeout=3)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        db = create_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
        await migrate(db)
        yield db
        await db.dispose()
        return
    name = await _scratch_database()
    if name is None:
        pytest.skip("PostgreSQL is not answering at " + PG_ADMIN.rsplit("@", 1)[-1])
    db = create_engine(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}")
    await migrate(db)
    yield db
    await db.dispose()
    await _drop_database(name)
