"""What polling asks of the Oz API: the real ``oz-bridge run`` beside a naive poller, side by side.

    python -m benchmarks.poll_traffic [--interval 15] [--burst 1000] [--idle-ticks 2] [--rounds 1]
                                      [--tracked 10000,100000]

Each poller talks to its own simulator, each in its own process, and the simulator counts what it
answers on the API (requests and response body bytes). The naive poller is the obvious client
(the SDK, every tick: list the runs created since the last tick, then retrieve each in-flight run);
the bridge uses production settings scaled to ``--interval`` (lookback twice it, a sweep every tick).
Both are started together, left one tick to settle, then measured: per idle tick, in the tick of a
``--burst`` of new in-flight runs, and over the four ticks after it (60 s at 15 s).

``--tracked``: the bridge's peak RSS once it has caught up with that many runs (one fresh bridge
per size, the runs already in the simulator).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from benchmarks.poll_cost import API_KEY, REPO, Bridge, peak_rss_mib

HERE = Path(__file__).resolve()
NOWHERE = [{"name": "plans only", "events": ["artifact.plan"], "to": ["sink"]}]  # runs without artifacts: no rows
TICKS_AFTER = 4  # "the minute after" a burst at the production interval of 15 s


# ---- the counting simulator (a child process) ------------------------------------------------------


def serve_counting_sim() -> None:
    """The simulator with a count of what its API answered; prints ``URL=…`` once it listens."""
    from bridge.sim import DEFAULT_BASE_PATH, Simulator, build_app

    sim = Simulator(api_key=API_KEY)
    counts = {"requests": 0, "bytes": 0, "first_pages": 0}

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        if request.path.startswith(DEFAULT_BASE_PATH + "/"):
            counts["requests"] += 1
            body = getattr(response, "body", None)
            counts["bytes"] += len(body) if isinstance(body, bytes) else response.content_length or 0
            if request.path == DEFAULT_BASE_PATH + "/agent/runs" and "cursor" not in request.query:
                counts["first_pages"] += 1  # a new listing: the naive poller makes one per tick
        return response

    async def traffic(_request: web.Request) -> web.Response:
        return web.json_response(counts)

    async def burst(request: web.Request) -> web.Response:
        runs = int((await request.json())["runs"])
        for _ in range(runs):
            sim.create_run(state="INPROGRESS")
        return web.json_response({"created": runs})

    app = build_app(sim)
    app.middlewares.insert(0, count)  # outermost: sees every answer as it leaves, faults included
    app.router.add_get("/_bench/traffic", traffic)
    app.router.add_post("/_bench/burst", burst)

    async def serve() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(f"URL=http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


class CountingSim:
    """A counting simulator process and a client for its two benchmark routes."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> CountingSim:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(HERE), "--serve-sim", stdout=asyncio.subprocess.PIPE, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        assert self.proc.stdout is not None
        while line := (await self.proc.stdout.readline()).decode():
            if line.startswith("URL="):
                self.url = line.split("=", 1)[1].strip()
                break
        else:
            raise RuntimeError("the counting simulator did not start")
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self.http is not None:
            await self.http.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()

    async def traffic(self) -> dict[str, int]:
        assert self.http is not None
        async with self.http.get(f"{self.url}/_bench/traffic") as response:
            return dict(await response.json())

    async def burst(self, runs: int) -> None:
        assert self.http is not None
        for start in range(0, runs, 5000):  # creation costs the simulator about 0.5 ms a run
            async with self.http.post(f"{self.url}/_bench/burst", json={"runs": min(5000, runs - start)}) as response:
                response.raise_for_status()


# ---- the naive poller (a child process) ------------------------------------------------------------


async def naive_poller(base_url: str, interval: float) -> None:
    """Every tick: list what was created since the last tick, then retrieve every run still in flight."""
    from datetime import datetime

    from oz_agent_sdk import AsyncOzAPI, DefaultAioHttpClient, omit

    terminal = {"SUCCEEDED", "FAILED", "ERROR", "CANCELLED"}
    client = AsyncOzAPI(api_key=API_KEY, base_url=base_url, http_client=DefaultAioHttpClient(), max_retries=0)
    in_flight: set[str] = set()
    since: datetime | None = None
    gate = asyncio.Semaphore(16)

    async def retrieve(run_id: str) -> None:
        async with gate:
            run = await client.agent.runs.retrieve(run_id)
        if run.state in terminal:
            in_flight.discard(run_id)

    while True:
        began = time.monotonic()
        known = list(in_flight)
        after = since if since is not None else omit
        async for run in client.agent.runs.list(sort_by="created_at", sort_order="asc", limit=100, created_after=after):
            since = run.created_at
            if run.state not in terminal:
                in_flight.add(run.run_id)
        await asyncio.gather(*(retrieve(run_id) for run_id in known))
        await asyncio.sleep(max(0.0, began + interval - time.monotonic()))


# ---- the measures -----------------------------------------------------------------------------------


def bridge_poll(interval: float) -> dict[str, Any]:
    """Production's proportions (15 s / 30 s lookback / sweep every 15 s) at another interval."""
    return {"interval": interval, "sweep": interval, "lookback": 2 * interval, "page_size": 100}


async def traffic(interval: float, burst: int, idle_ticks: int = 2) -> dict[str, dict[str, float]]:
    """The bridge and the naive poller, started together, each against its own counting simulator."""
    async with CountingSim() as bridge_sim, CountingSim() as naive_sim:
        bridge = Bridge(REPO, bridge_sim.url, bridge_poll(interval), NOWHERE)
        naive = await asyncio.create_subprocess_exec(
            sys.executable, str(HERE), "--naive", f"{naive_sim.url}/api/v1", str(interval), cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        try:
            await bridge.start()
            await asyncio.sleep(interval * 1.5)  # past the first tick and its sweep

            async def snapshot() -> dict[str, dict[str, float]]:
                b, n = await bridge_sim.traffic(), await naive_sim.traffic()
                polls = await bridge.metric("oz_bridge_polls_total")
                return {"bridge": {**b, "ticks": polls}, "naive": {**n, "ticks": n["first_pages"]}}

            idle_from = await snapshot()
            await asyncio.sleep(idle_ticks * interval)
            idle_to = await snapshot()
            await asyncio.gather(bridge_sim.burst(burst), naive_sim.burst(burst))
            burst_from = await snapshot()
            await asyncio.sleep(interval)
            burst_to = await snapshot()
            await asyncio.sleep((TICKS_AFTER - 1) * interval)
            after = await snapshot()
        finally:
            if naive.returncode is None:
                naive.terminate()
                await naive.wait()
            await bridge.close()
    figures: dict[str, dict[str, float]] = {}
    for who in ("bridge", "naive"):
        ticks = max(1.0, idle_to[who]["ticks"] - idle_from[who]["ticks"])

        def delta(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]], key: str, who: str = who) -> float:
            return b[who][key] - a[who][key]

        figures[who] = {
            "idle_requests_per_tick": delta(idle_from, idle_to, "requests") / ticks,
            "idle_bytes_per_tick": delta(idle_from, idle_to, "bytes") / ticks,
            "burst_tick_requests": delta(burst_from, burst_to, "requests"),
            "burst_tick_bytes": delta(burst_from, burst_to, "bytes"),
            "after_requests": delta(burst_from, after, "requests"),
            "after_bytes": delta(burst_from, after, "bytes"),
        }
    return figures


async def stored_runs(database: Path) -> int:
    def count() -> int:
        if not database.exists():
            return 0
        try:
            with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)) as conn:
                return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])
        except sqlite3.OperationalError:  # not migrated yet, or busy
            return 0

    return await asyncio.to_thread(count)


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def tracked_rss(sim: CountingSim, runs: int) -> float:
    """Peak RSS (MiB) of a fresh bridge once it has stored the ``runs`` already in ``sim``."""
    poll = {"interval": 0.5, "sweep": 15, "lookback": 30, "page_size": 100, "start": "24h"}
    bridge = Bridge(REPO, sim.url, poll, NOWHERE)
    try:
        await bridge.start()

        async def caught_up() -> bool:
            return await stored_runs(bridge.workdir / "bridge.db") >= runs

        await until(caught_up, 1800, f"{runs} runs stored")
        await asyncio.sleep(1)  # a tick or two at rest, the peak is the catch-up's or steady state's
        return peak_rss_mib(bridge.pid)
    finally:
        await bridge.close()


async def main(args: argparse.Namespace) -> None:
    rounds = [await traffic(args.interval, args.burst, args.idle_ticks) for _ in range(args.rounds)]
    print(f"interval {args.interval:g} s, burst of {args.burst} runs, medians of {args.rounds} round(s)")
    print(f"{'measure':<40} {'oz-bridge':>12} {'naive':>12} {'ratio':>7}")
    for key in rounds[0]["bridge"]:
        ours = statistics.median(r["bridge"][key] for r in rounds)
        naive = statistics.median(r["naive"][key] for r in rounds)
        print(f"{key:<40} {ours:>12.1f} {naive:>12.1f} {ours / naive if naive else float('nan'):>7.3f}")
    for size in [int(s) for s in args.tracked.split(",") if s]:
        async with CountingSim() as sim:
            await sim.burst(size)
            print(f"peak RSS with {size} runs tracked: {await tracked_rss(sim, size):.1f} MiB")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.poll_traffic", description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--idle-ticks", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--tracked", default="", help="comma-separated run counts for the RSS figure")
    return parser.parse_args(argv)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-sim"]:
        serve_counting_sim()
    elif sys.argv[1:2] == ["--naive"]:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(naive_poller(sys.argv[2], float(sys.argv[3])))
    else:
        asyncio.run(main(parse_args()))
