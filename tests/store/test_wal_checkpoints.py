"""SQLite's WAL is checkpointed beside the bridge, never inside one of its commits, and stays bounded."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store.engine import WalCheckpointer, create_engine

PAGE = 4096


async def write(engine: AsyncEngine, transactions: int, rows: int = 100) -> None:
    """About ``transactions * rows`` pages through the WAL, one commit per transaction."""
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS filler (x BLOB)"))
    for _ in range(transactions):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO filler VALUES (randomblob(:n))"), [{"n": PAGE}] * rows)


def wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


async def test_commits_leave_the_wal_to_the_checkpointer(tmp_path: Path) -> None:
    own, plain = tmp_path / "own.db", tmp_path / "plain.db"
    engines = [create_engine(f"sqlite:///{own}", own_checkpoints=True), create_engine(f"sqlite:///{plain}")]
    try:
        for engine in engines:
            await write(engine, transactions=30)  # some 6000 frames: past 1000, SQLite's own checkpoint
        _, frames_kept, _ = WalCheckpointer(own).checkpoint()
        _, frames_since_auto, _ = WalCheckpointer(plain).checkpoint()
        assert frames_kept > 3000  # every commit's pages still in the WAL: no commit copied them
        assert frames_since_auto < 2000  # the plain engine's commits did, every 1000 pages
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_checkpoint_moves_every_page_and_the_wal_starts_over_or_is_cut_back(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    engine = create_engine(f"sqlite:///{path}", own_checkpoints=True)
    try:
        await write(engine, transactions=20)
        database_before, wal_before = path.stat().st_size, wal(path).stat().st_size
        busy, frames, moved = WalCheckpointer(path).checkpoint()
        assert (busy, moved) == (0, frames) and frames > 0  # every page is in the database now
        assert path.stat().st_size > database_before
        await write(engine, transactions=1)
        assert wal(path).stat().st_size == wal_before  # the next writer started the WAL over: it did not grow
        assert WalCheckpointer(path).checkpoint()[1] < frames / 5
        assert wal(path).stat().st_size > 0
        WalCheckpointer(path, truncate_above=0).checkpoint()  # a WAL past the limit is cut back
        assert wal(path).stat().st_size == 0
    finally:
        await engine.dispose()


async def test_the_checkpointer_runs_every_few_seconds_until_stopped(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    engine = create_engine(f"sqlite:///{path}", own_checkpoints=True)
    checkpointer = WalCheckpointer(path, every=0.01)
    try:
        checkpointer.start()
        await write(engine, transactions=5)
        deadline = asyncio.get_running_loop().time() + 10
        while not (checkpointer.last and checkpointer.last[1] > 0 and checkpointer.last[2] == checkpointer.last[1]):
            assert asyncio.get_running_loop().time() < deadline, checkpointer.last
            await asyncio.sleep(0.01)
        await checkpointer.stop()
        last = checkpointer.last
        await write(engine, transactions=5)
        await asyncio.sleep(0.05)
        assert checkpointer.last == last  # stopped: nothing checkpoints any more
    finally:
        await checkpointer.stop()
        await engine.dispose()
