"""End-to-end benchmark: the real ``oz-bridge run`` against the simulator and a local receiver.

    python -m benchmarks [--runs 1000] [--receiver-ms 5]

Each configuration runs in its own bridge process on a fresh database; the table
shows throughput (detection to acknowledged, per second), latency percentiles,
the cost of an idle poll, and the bridge's peak memory, with ratios against the
baseline (sequential delivery on SQLite).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import yaml
from aiohttp import web

API_KEY = "bench-key"
PG_ADMIN = os.environ.get("OZ_BRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass
class Receiver:
    delay: float
    arrivals: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(self.delay)
        self.arrivals.append((time.monotonic(), body))
        return web.Response(text="ok")


@dataclass(frozen=True)
class Config:
    name: str
    concurrency: int
    database: str  # "sqlite" or "postgresql"


CONFIGS = [
    Config("baseline: sequential, SQLite", 1, "sqlite"),
    Config("default: 16 workers, SQLite", 16, "sqlite"),
    Config("default: 16 workers, PostgreSQL", 16, "postgresql"),
]


async def start_simulator() -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge.sim", "--port", "0", "--api-key", API_KEY, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    while True:
        line = (await proc.stdout.readline()).decode()
        if line.startswith("OZ_SIM_URL="):
            return proc, line.split("=", 1)[1].strip()
        if not line:
            raise RuntimeError("simulator did not start")


async def database_url(config: Config, workdir: Path) -> str:
    if config.database == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}"
    name = f"ozb_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def until(check: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        await asyncio.sleep(0.02)


async def spawn_bridge(workdir: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge.cli", "run", "--config", str(workdir / "bridge.yaml"),
        env=env, cwd=workdir, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def answers(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def counter(http: aiohttp.ClientSession, port: int, name: str) -> float:
    """A counter from the bridge's own /metrics, summed over its labels."""
    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def measure(config: Config, sim_url: str, receiver: Receiver, runs: int) -> dict[str, float]:
    """First boot fixes the start point; the runs are created while the bridge is down;
    the second boot drains that backlog, which is what gets timed."""
    receiver.arrivals.clear()
    async with aiohttp.ClientSession() as http:
        await http.post(f"{sim_url}/_sim/reset")
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            port = 18000 + os.getpid() % 1000
            settings = {
                # Production sweep settings; a short interval so detection doesn't dominate.
                "poll": {"interval": 0.2, "sweep": 15, "lookback": 30, "page_size": 100},
                "delivery": {"concurrency": config.concurrency, "check_interval": 0.2},
                "targets": {"hook": {"type": "webhook", "url": receiver.url, "timeout": 5}},
                "routes": [{"name": "all", "events": ["*"], "to": ["hook"]}],
            }
            (workdir / "bridge.yaml").write_text(yaml.safe_dump(settings))
            env = {
                **os.environ,
                "WARP_API_KEY": API_KEY,
                "OZ_API_BASE_URL": f"{sim_url}/api/v1",
                "OZ_BRIDGE_DATABASE_URL": await database_url(config, workdir),
                "OZ_BRIDGE_PORT": str(port),
                "OZ_BRIDGE_HOST": "127.0.0.1",
                "OZ_BRIDGE_LOG_LEVEL": "warning",
            }
            health = f"http://127.0.0.1:{port}/healthz"
            ready = f"http://127.0.0.1:{port}/readyz"
            bridge = await spawn_bridge(workdir, env)
            await until(lambda: answers(http, ready), 30)
            polls = await counter(http, port, "oz_bridge_polls_total")
            requests = await counter(http, port, "oz_bridge_poll_requests_total")
            await asyncio.sleep(3.0)  # the API has no runs yet: truly idle ticks
            idle_polls = await counter(http, port, "oz_bridge_polls_total") - polls
            idle_requests = await counter(http, port, "oz_bridge_poll_requests_total") - requests
            bridge.terminate()
            await bridge.wait()
            for _ in range(runs):
                await http.post(f"{sim_url}/_sim/runs", json={"state": "INPROGRESS"})

            spawned = time.monotonic()
            bridge = await spawn_bridge(workdir, env)
            await until(lambda: answers(http, health), 30)
            startup = time.monotonic() - spawned

            async def all_delivered() -> bool:
                return len(receiver.arrivals) >= 2 * runs

            await until(all_delivered, 600)
            first, last = receiver.arrivals[0][0], receiver.arrivals[-1][0]
            latencies = [at - spawned for at, _ in receiver.arrivals]

            rss = peak_rss_mib(bridge.pid)
            bridge.terminate()
            await bridge.wait()
    return {
        "events": float(len(receiver.arrivals)),
        "events_per_s": (len(receiver.arrivals) - 1) / (last - first),
        "startup_s": startup,
        "drained_s": latencies[-1],
        "idle_requests_per_tick": idle_requests / idle_polls,
        "peak_rss_mib": rss,
    }


def table(results: list[tuple[Config, dict[str, float]]]) -> str:
    base = results[0][1]
    lines = [
        f"{'configuration':<34} {'events':>7} {'events/s':>9} {'ratio':>6} {'start s':>8} {'drained s':>10} "
        f"{'req/idle tick':>13} {'peak RSS MiB':>12} {'ratio':>6}"
    ]
    for config, r in results:
        lines.append(
            f"{config.name:<34} {r['events']:>7.0f} {r['events_per_s']:>9.1f} "
            f"{r['events_per_s'] / base['events_per_s']:>6.2f} {r['startup_s']:>8.2f} {r['drained_s']:>10.2f} "
            f"{r['idle_requests_per_tick']:>13.2f} {r['peak_rss_mib']:>12.1f} "
            f"{r['peak_rss_mib'] / base['peak_rss_mib']:>6.2f}"
        )
    return "\n".join(lines)


async def main(runs: int, receiver_ms: float, only_sqlite: bool) -> None:
    receiver = Receiver(receiver_ms / 1000)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    sim, sim_url = await start_simulator()
    results = []
    try:
        for config in CONFIGS:
            if only_sqlite and config.database != "sqlite":
                continue
            results.append((config, await measure(config, sim_url, receiver, runs)))
            print(f"  measured {config.name}", file=sys.stderr)
    finally:
        sim.terminate()
        await sim.wait()
        await runner.cleanup()
    print(
        f"a backlog of {runs} runs (2 events each) drained after a restart; receiver answers after {receiver_ms:g} ms\n"
    )
    print(table(results))
    print("\n" + json.dumps({c.name: r for c, r in results}, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--receiver-ms", type=float, default=5.0)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.receiver_ms, args.sqlite_only))
