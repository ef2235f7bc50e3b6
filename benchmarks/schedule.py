"""Benchmark: the scheduled job's tick cost as the number of stored runs grows.

    python -m benchmarks.schedule [--sizes 1000,10000,50000] [--changed 100] [--sqlite-only]

For each size, a fresh database gets that many stored runs (``--changed`` of
them blocked, 20 % in progress, the rest ended), seen by the poller over the
last hour, the job's first tick arms the unfinished ones, and then three
figures are taken: a quiet tick (nothing changed, nothing due), a tick after
``--changed`` runs changed, and a tick with ``--changed`` reminders due. The
last one also re-reads the job's two-minute margin behind its cursor (once a
minute), whose cost follows how many runs were seen in the last two minutes
(here ``size / 30``), not how many are stored. Ratios are against the smallest
size on the same backend: a tick whose work is bounded stays near 1.00 however
many runs are stored.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.metrics import Metrics
from bridge.schedule import TimePolicy
from bridge.schedule_job import ScheduleJob
from bridge.settings import RouteSettings
from bridge.store import runs as run_store
from bridge.store.engine import create_engine, migrate
from bridge.store.tables import runs
from tests.pg import scratch_database

T0 = datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
ROUTES = [RouteSettings(name="all", events=["*"], to=["hook"])]
POLICY = TimePolicy(blocked_every=1800, stuck_after=7200, run_usd=5.0)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def stored_run(n: int, size: int, blocked: int) -> dict[str, Any]:
    state = "BLOCKED" if n < blocked else "INPROGRESS" if n % 10 < 2 else "SUCCEEDED"
    updated = T0 - timedelta(seconds=3600 * (size - n) / size)
    run = {
        "run_id": f"run-{n:07d}",
        "title": f"Run {n}",
        "prompt": "Do the thing",
        "state": state,
        "created_at": (updated - timedelta(minutes=5)).isoformat(),
        "updated_at": updated.isoformat(),
        "request_usage": {"inference_cost_usd": 0.5},
        "artifacts": [],
    }
    seen = {"seen_at": updated + timedelta(seconds=1)}
    return {"run_id": run["run_id"], "state": state, "updated_at": updated, "artifact_keys": [], "run": run} | seen


async def seed(engine: AsyncEngine, size: int, blocked: int, clock: Clock) -> None:
    rows = [stored_run(n, size, blocked) for n in range(size)]
    async with engine.begin() as conn:
        for start in range(0, size, 5000):
            await conn.execute(insert(runs), rows[start : start + 5000])
        await run_store.init_poll_state(conn, T0 - timedelta(days=1))
        await run_store.record_poll_success(conn, clock.now, clock.now, None)  # swept up to now


async def timed(job: ScheduleJob, repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await job.run_once()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def touch(engine: AsyncEngine, clock: Clock, count: int, offset: int) -> None:
    """``count`` unfinished runs changed, as a poll page would leave them."""
    async with engine.begin() as conn:
        for n in range(offset, offset + count):
            await conn.execute(
                update(runs).where(runs.c.run_id == f"run-{n:07d}").values(updated_at=clock.now, seen_at=clock.now)
            )
        await run_store.record_poll_success(conn, clock.now, clock.now, None)  # swept up to now


async def measure(url: str, size: int, changed: int) -> tuple[float, float, float]:
    engine, clock = create_engine(url), Clock()
    try:
        await migrate(engine)
        await seed(engine, size, changed, clock)
        job = ScheduleJob(engine, POLICY, ROUTES, [], Metrics(), clock=clock, batch=500)
        for _ in range(size // 500 + 2):  # the first tick arms every unfinished run; let the reviews drain
            await job.run_once()
        quiet = await timed(job)
        clock.now += timedelta(seconds=1)
        await touch(engine, clock, changed, size - changed)  # the newest runs, as in a real fleet
        started = time.perf_counter()
        await job.run_once()
        noticed = (time.perf_counter() - started) * 1000
        clock.now = T0 + timedelta(minutes=40)  # reminder 1 of the blocked runs falls due
        await touch(engine, clock, 0, 0)
        started = time.perf_counter()
        await job.run_once()
        reviewed = (time.perf_counter() - started) * 1000
        return quiet, noticed, reviewed
    finally:
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'backend':<11} {'stored runs':>11} {'quiet ms':>9} {'ratio':>6} {'noticed ms':>11} {'ratio':>6}"
          f" {'due ms':>8} {'ratio':>6}")  # fmt: skip
    backends = ["sqlite"] if args.sqlite_only else ["sqlite", "postgresql"]
    for backend in backends:
        baseline: tuple[float, float, float] | None = None
        for size in sizes:
            with tempfile.TemporaryDirectory() as tmp:
                if backend == "sqlite":
                    figures = await measure(f"sqlite:///{Path(tmp) / 'b.db'}", size, args.changed)
                else:
                    async with scratch_database() as url:
                        figures = await measure(url, size, args.changed)
            baseline = baseline or figures
            ratios = [f / b for f, b in zip(figures, baseline, strict=True)]
            print(f"{backend:<11} {size:>11} {figures[0]:>9.1f} {ratios[0]:>6.2f} {figures[1]:>11.1f} {ratios[1]:>6.2f}"
                  f" {figures[2]:>8.1f} {ratios[2]:>6.2f}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
