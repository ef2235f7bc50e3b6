"""PostgreSQL LISTEN/NOTIFY wake-ups: every replica hears that rows were queued, and keeps listening."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg

from bridge.diff import diff_run
from bridge.store import outbox
from bridge.store.engine import create_engine, migrate
from bridge.store.wakeups import Wakeups, asyncpg_dsn
from tests.conftest import make_run
from tests.pg import scratch_database
from tests.test_diff import NOW, START


async def test_queuing_rows_wakes_a_listener_at_commit_and_after_its_connection_was_cut() -> None:
    async with scratch_database() as url:
        engine = create_engine(url)
        await migrate(engine)
        woken = asyncio.Event()
        listener = Wakeups(url, woken.set)
        task = asyncio.create_task(listener.run())
        try:
            await asyncio.wait_for(listener.connected.wait(), 10)
            woken.clear()  # the wake-up every (re)connection starts with
            async with engine.begin() as conn:
                await outbox.enqueue(conn, [(diff_run(None, make_run("a"), START, NOW)[0], "t")], datetime.now(UTC))
                await asyncio.sleep(0.2)
                assert not woken.is_set()  # told at commit, not before
            await asyncio.wait_for(woken.wait(), 5)

            admin = await asyncpg.connect(asyncpg_dsn(url))
            cut = await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN%'"
            )
            assert [row[0] for row in cut] == [True]
            await admin.close()
            await asyncio.sleep(0.5)
            await asyncio.wait_for(listener.connected.wait(), 20)  # listening again
            woken.clear()
            async with engine.begin() as conn:
                await outbox.enqueue(conn, [(diff_run(None, make_run("b"), START, NOW)[0], "t")], datetime.now(UTC))
            await asyncio.wait_for(woken.wait(), 5)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await engine.dispose()
