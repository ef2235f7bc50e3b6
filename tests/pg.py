"""Scratch PostgreSQL databases for tests: one per test, dropped after; skipped when PostgreSQL is down
(except in CI, where its absence is a failure)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

PG_ADMIN = os.environ.get("OZ_BRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    """Yields the URL of a new, empty database."""
    try:
        admin = await asyncpg.connect(PG_ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        if os.environ.get("CI"):
            raise
        pytest.skip("PostgreSQL is not answering at " + PG_ADMIN.rsplit("@", 1)[-1])
    name = f"ozb_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin = await asyncpg.connect(PG_ADMIN, timeout=3)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
