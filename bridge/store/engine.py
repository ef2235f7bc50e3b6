"""Engine construction and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def async_url(url: str) -> str:
    """The contract's ``sqlite:///`` / ``postgresql://`` URLs, with their async drivers."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    return url


def sqlite_path(url: str) -> Path | None:
    for prefix in ("sqlite:///", "sqlite+aiosqlite:///"):
        if url.startswith(prefix):
            path = url.removeprefix(prefix)
            return None if path in ("", ":memory:") else Path(path)
    return None


def create_engine(url: str) -> AsyncEngine:
    path = sqlite_path(url)
    if path is None:
        return create_async_engine(async_url(url), pool_pre_ping=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Every SQLite transaction takes the write lock (BEGIN IMMEDIATE), so a single
    # pooled connection loses no concurrency: callers queue fairly in asyncio
    # instead of in SQLite's busy handler, whose sleeps grow to 100 ms each.
    engine = create_async_engine(
        async_url(url), connect_args={"timeout": 30}, pool_size=1, max_overflow=0, pool_timeout=60
    )
    _make_sqlite_serialisable(engine)
    return engine


def _make_sqlite_serialisable(engine: AsyncEngine) -> None:
    """WAL for concurrent readers, and BEGIN IMMEDIATE so two writers queue on the
    busy timeout instead of failing when a read transaction tries to upgrade."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


# Any fixed number: replicas starting together take turns migrating on PostgreSQL.
_MIGRATION_LOCK = 0x6F7A_6272


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; a no-op when it already is."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        await connection.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "head"))


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.migration import MigrationContext

    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
