"""What one count of the outbox gauges costs, beside the GROUP BY over the whole outbox it replaced.

    PYTHONPATH=. python benchmarks/outbox_gauges.py [--delivered 300000] [--pending 2000] [--dead 50]

Fills a fresh database (PostgreSQL, vacuumed and analysed, then SQLite) with rows delivered,
pending and dead across three targets, and times each query (mean of 20, after one warm-up).
The delivered rows are those kept for ``delivery.retention``: the old query read them all.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.store import outbox
from bridge.store.engine import create_engine, migrate
from tests.pg import scratch_database

FILL_POSTGRES = """
INSERT INTO outbox (event_id, target, run_id, event_type, payload, status, attempts, enqueued_at, next_attempt_at,
                    delivered_at)
SELECT 'e' || g, 't' || (g % 3), 'r' || (g / 20), 'run.created', '{}'::json,
       CASE WHEN g < :d THEN 'delivered' WHEN g < :d + :p THEN 'pending' ELSE 'dead' END, 1, :now, :now, :now
FROM generate_series(0, :n - 1) g
"""
FILL_SQLITE = """
WITH RECURSIVE g(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM g WHERE x < :n - 1)
INSERT INTO outbox (event_id, target, run_id, event_type, payload, status, attempts, enqueued_at, next_attempt_at,
                    delivered_at)
SELECT 'e' || x, 't' || (x % 3), 'r' || (x / 20), 'run.created', '{}',
       CASE WHEN x < :d THEN 'delivered' WHEN x < :d + :p THEN 'pending' ELSE 'dead' END, 1, :now, :now, :now
FROM g
"""
Count = Callable[[AsyncConnection], Awaitable[dict[tuple[str, str], int]]]


async def fill(engine: AsyncEngine, delivered: int, pending: int, dead: int) -> None:
    postgres = engine.dialect.name == "postgresql"
    now: Any = datetime.now(UTC) if postgres else datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    async with engine.begin() as conn:
        await conn.execute(
            text(FILL_POSTGRES if postgres else FILL_SQLITE),
            {"d": delivered, "p": pending, "n": delivered + pending + dead, "now": now},
        )
    if not postgres:
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))


async def mean_ms(engine: AsyncEngine, count: Count, times: int = 20) -> tuple[float, dict[tuple[str, str], int]]:
    async with engine.connect() as conn:
        result = await count(conn)
        started = time.perf_counter()
        for _ in range(times):
            await count(conn)
        return (time.perf_counter() - started) / times * 1000, result


async def compare(engine: AsyncEngine, label: str) -> None:
    old_ms, old = await mean_ms(engine, outbox.counts_by_status)
    new_ms, new = await mean_ms(engine, outbox.gauge_counts)
    assert old == new, (old, new)
    print(f"{label}: GROUP BY over status != 'delivered' {old_ms:.1f} ms, index-only per status {new_ms:.1f} ms")


async def main(delivered: int, pending: int, dead: int) -> None:
    print(f"{delivered} delivered, {pending} pending, {dead} dead rows over three targets")
    async with scratch_database() as url:
        engine = create_engine(url)
        await migrate(engine)
        await fill(engine, delivered, pending, dead)
        connection = await asyncpg.connect(url)
        await connection.execute("VACUUM ANALYZE outbox")  # as autovacuum leaves a table kept for days
        await connection.close()
        await compare(engine, "postgresql")
        await engine.dispose()
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{folder}/bridge.db")
        await migrate(engine)
        await fill(engine, delivered, pending, dead)
        await compare(engine, "sqlite")
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delivered", type=int, default=300_000)
    parser.add_argument("--pending", type=int, default=2_000)
    parser.add_argument("--dead", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.delivered, args.pending, args.dead))
