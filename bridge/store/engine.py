"""Engine construction and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from bridge.logs import get_logger

if TYPE_CHECKING:
    from alembic.config import Config

log = get_logger("bridge.store.engine")
MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision (tests/store/test_migrations.py checks it against Alembic's head).
# Known here so that a start on an up-to-date schema needs no Alembic at all: importing it and
# loading every migration script was a tenth of the time from start to /readyz.
HEAD_REVISION = "0007"
T = TypeVar("T")


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


def create_engine(url: str, own_checkpoints: bool = False) -> AsyncEngine:
    """With ``own_checkpoints`` (SQLite), commits never checkpoint the WAL: the caller runs a
    ``WalCheckpointer`` beside the engine, which keeps the WAL from growing without bound."""
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
    _make_sqlite_serialisable(engine, own_checkpoints)
    return engine


def _make_sqlite_serialisable(engine: AsyncEngine, own_checkpoints: bool = False) -> None:
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
        if own_checkpoints:
            # Else the commit that fills the WAL past 1000 pages copies them all into the database
            # (and syncs it) before it returns, on the thread every transaction of the bridge waits for.
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

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
        await connection.run_sync(_upgrade_unless_current)


def _upgrade_unless_current(connection: Connection) -> None:
    if _stored_revision(connection) == HEAD_REVISION:
        return
    from alembic import command

    command.upgrade(_alembic_config(connection), "head")


def _stored_revision(connection: Connection) -> str | None:
    """The revision the schema is at, read without Alembic (None for an empty database)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return str(versions[0]) if len(versions) == 1 else None


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.migration import MigrationContext

    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


def run_transaction(engine: AsyncEngine, work: Callable[[Connection], T]) -> Awaitable[T]:
    """Run ``work`` (plain SQLAlchemy on a sync ``Connection``) in one transaction.

    On SQLite the whole of ``work`` runs in aiosqlite's own thread, on the pooled
    connection's sqlite3 handle, so a transaction of ten statements costs one hop
    between threads instead of three or four per statement; on PostgreSQL it runs
    through ``run_sync`` as usual.
    """
    if engine.dialect.name == "sqlite":
        return _run_in_sqlite_thread(engine, work)
    return _run_sync(engine, work)


async def _run_sync(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    async with engine.begin() as conn:
        return await conn.run_sync(work)


async def _run_in_sqlite_thread(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection  # the aiosqlite.Connection
        run_in_thread = getattr(driver, "_execute", None)
        handle = getattr(driver, "_conn", None)
        if run_in_thread is None or not isinstance(handle, sqlite3.Connection):
            # An aiosqlite without these internals: the ordinary, slower way.
            async with conn.begin():
                return await conn.run_sync(work)
        # A sync engine over this very handle, kept for the connection's life in its info.
        sync_engine = raw.info.get(_SYNC_ENGINE)
        if sync_engine is None:
            sync_engine = create_sync_engine(
                "sqlite://", creator=lambda: handle, poolclass=StaticPool, pool_reset_on_return=None
            )
            raw.info[_SYNC_ENGINE] = sync_engine
        result: T = await run_in_thread(_sqlite_transaction, sync_engine, handle, work)
        return result


_SYNC_ENGINE = "oz_bridge_sync_engine"


def _sqlite_transaction(sync_engine: Engine, handle: sqlite3.Connection, work: Callable[[Connection], T]) -> T:
    """In aiosqlite's thread: BEGIN IMMEDIATE, ``work``, COMMIT (or ROLLBACK)."""
    with sync_engine.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            result = work(conn)
        except BaseException:
            if handle.in_transaction:
                handle.rollback()
            raise
        handle.commit()
        return result


class TransactionRunner:
    """Runs a worker's transactions (plain SQLAlchemy ``work`` on a sync Connection).

    On SQLite through ``run_transaction`` (one hop into aiosqlite's thread; the single
    pooled connection is shared, so each transaction checks it out: no ping there). On
    PostgreSQL on a connection of the worker's own, kept between transactions: a pooled
    checkout pings the server first, three more round trips per transaction. Any error
    drops that connection, so the next transaction starts on a fresh one.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._lock = asyncio.Lock()  # a worker's stop() may record while its loop is mid-cycle

    async def run(self, work: Callable[[Connection], T]) -> T:
        if self._engine.dialect.name == "sqlite":
            return await run_transaction(self._engine, work)
        async with self._lock:
            if self._connection is None:
                self._connection = await self._engine.connect()
            try:
                async with self._connection.begin():
                    return await self._connection.run_sync(work)
            except BaseException:
                connection, self._connection = self._connection, None
                with contextlib.suppress(Exception):
                    await connection.close()
                raise

    async def close(self) -> None:
        async with self._lock:
            if self._connection is not None:
                connection, self._connection = self._connection, None
                await connection.close()


CHECKPOINT_EVERY = 5.0  # seconds between checkpoints of a SQLite WAL
TRUNCATE_WAL_ABOVE = 64 * 1024 * 1024  # bytes of WAL file past which a checkpoint also truncates it
CHECKPOINT_BUSY_TIMEOUT = 0.5  # seconds a truncating checkpoint waits for the write lock and readers


class WalCheckpointer:
    """Checkpoints a SQLite database's WAL every few seconds, off the hot path.

    The app's connections have ``wal_autocheckpoint=0`` (``create_engine(own_checkpoints=True)``);
    this copies the WAL into the database on a connection of its own, in a thread of the
    default executor, so no commit of the bridge ever waits for it. A PASSIVE checkpoint
    takes no lock and waits for nobody: it moves what no reader still needs, and the next
    writer then starts the WAL file over from its beginning, so the file stops growing.
    Should it have grown past ``truncate_above`` anyway (a long reader held the old pages),
    a TRUNCATE follows: it waits briefly for the write lock and readers, has little left to
    copy after the PASSIVE one, and cuts the file back to nothing.
    """

    def __init__(self, path: Path, every: float = CHECKPOINT_EVERY, truncate_above: int = TRUNCATE_WAL_ABOVE) -> None:
        self._path = path
        self._wal = path.with_name(path.name + "-wal")
        self._every = every
        self._truncate_above = truncate_above
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last: tuple[int, int, int] | None = None  # (busy, WAL frames, frames checkpointed) of the latest

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sqlite-checkpoints")

    async def stop(self) -> None:
        """Let a checkpoint under way finish, then stop; the engine's last connection to close
        checkpoints what is left (SQLite does that on close) and removes the WAL."""
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._every)
            if self._stopping.is_set():
                return
            try:
                self.last = await asyncio.to_thread(self.checkpoint)
            except (sqlite3.Error, OSError) as exc:
                log.warning("could not checkpoint the SQLite WAL; will try again", error=str(exc))

    def checkpoint(self) -> tuple[int, int, int]:
        """One checkpoint, blocking: PASSIVE, then TRUNCATE when the WAL file is large."""
        connection = sqlite3.connect(self._path, timeout=CHECKPOINT_BUSY_TIMEOUT, isolation_level=None)
        try:
            result = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if self._wal.exists() and self._wal.stat().st_size > self._truncate_above:
                result = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            busy, frames, moved = result
            return int(busy), int(frames), int(moved)
        finally:
            connection.close()
