"""Commit latency on SQLite with SQLite's own WAL checkpoints beside the bridge's ``WalCheckpointer``.

    python benchmarks/sqlite_commits.py [--commits 30000] [--every 5]

Back-to-back one-row commits (2 KB each) through the bridge's engine, in a temporary folder:
the worst case for checkpoints, since a PASSIVE one never finds a moment without a writer.
Prints latency percentiles, the WAL's peak size (sampled every 200 commits) and its size at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from bridge.store.engine import WalCheckpointer, create_engine


async def measure(own: bool, commits: int, every: float) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bridge.db"
        wal = path.with_name(path.name + "-wal")
        engine = create_engine(f"sqlite:///{path}", own_checkpoints=own)
        checkpointer = WalCheckpointer(path, every=every) if own else None
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE filler (x BLOB)"))
        if checkpointer is not None:
            checkpointer.start()
        took, peak = [], 0
        for n in range(commits):
            started = time.perf_counter()
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO filler VALUES (randomblob(2000))"))
            took.append((time.perf_counter() - started) * 1000)
            if n % 200 == 0:
                peak = max(peak, wal.stat().st_size)
        if checkpointer is not None:
            await checkpointer.stop()
        end = wal.stat().st_size
        await engine.dispose()
    q = statistics.quantiles(took, n=1000)
    label = "WalCheckpointer" if own else "SQLite's own checkpoints"
    return (
        f"{label}: p50 {q[499]:.2f} ms, p99 {q[989]:.2f} ms, p99.9 {q[998]:.2f} ms, max {max(took):.1f} ms; "
        f"WAL peak {peak / 1e6:.1f} MB, at the end {end / 1e6:.1f} MB"
    )


async def main(commits: int, every: float) -> None:
    for own in (False, True):
        print(await measure(own, commits, every))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=30_000)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between checkpoints")
    args = parser.parse_args()
    asyncio.run(main(args.commits, args.every))
