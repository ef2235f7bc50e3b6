"""Detection to acknowledgement: how long after a run appears its webhook is answered.

    python -m benchmarks.ack_latency [--interval 2] [--runs 200] [--spread 20]

The real ``oz-bridge run`` (fresh SQLite database) polls the simulator (its own process) every
``--interval`` seconds and posts ``run.created`` to a receiver in this process. ``--runs`` runs are
created at an even pace over ``--spread`` seconds; each one's latency is from the simulator's answer to
its creation until the receiver has the webhook. A poller finds a change on average half an interval
after it happened and at worst one interval after, so the interval is the baseline to read them by.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import aiohttp
from aiohttp import web

from benchmarks.inbound_latency import start_simulator
from benchmarks.poll_cost import REPO, Bridge


class Receiver:
    """Answers every webhook at once and notes when each run's ``run.created`` arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.arrived.setdefault(str(body["run"]["run_id"]), time.monotonic())
        return web.Response(text="ok")

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_s": statistics.median(ordered),
        "p99_s": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "max_s": ordered[-1],
    }


async def ack_latency(interval: float, runs: int, spread: float) -> dict[str, float]:
    """Seconds from creation to acknowledged webhook: p50, p99 and max over ``runs`` runs."""
    sim, sim_url = await start_simulator()
    try:
        async with Receiver() as receiver, aiohttp.ClientSession() as http:
            poll = {"interval": interval, "sweep": 15, "lookback": 30, "page_size": 100}
            targets = {"hook": {"type": "webhook", "url": receiver.url, "timeout": 5}}
            routes = [{"name": "created", "events": ["run.created"], "to": ["hook"]}]
            bridge = Bridge(REPO, sim_url, poll, routes, targets)
            try:
                await bridge.start()
                await asyncio.sleep(interval)  # the first tick fixes the start point
                created: dict[str, float] = {}
                began = time.monotonic()
                for n in range(runs):
                    await asyncio.sleep(max(0.0, began + n * spread / runs - time.monotonic()))
                    async with http.post(f"{sim_url}/_sim/runs", json={"state": "INPROGRESS"}) as response:
                        run: dict[str, Any] = await response.json()
                    created[run["run_id"]] = time.monotonic()
                deadline = time.monotonic() + 10 * interval + 60
                while len(receiver.arrived.keys() & created.keys()) < runs:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"only {len(receiver.arrived)} of {runs} webhooks arrived")
                    await asyncio.sleep(0.05)
            finally:
                await bridge.close()
        return percentiles([receiver.arrived[run_id] - at for run_id, at in created.items()])
    finally:
        sim.terminate()
        await sim.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ack_latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--spread", type=float, default=20.0)
    args = parser.parse_args()
    figures = asyncio.run(ack_latency(args.interval, args.runs, args.spread))
    print(f"poll interval {args.interval:g} s, {args.runs} runs over {args.spread:g} s")
    for key, value in figures.items():
        print(f"{key:<6} {value:7.3f} s  ({value / args.interval:.2f} x the interval)")


if __name__ == "__main__":
    main()
