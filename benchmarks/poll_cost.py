"""What polling costs, the old code beside the new in the same run.

    python -m benchmarks.poll_cost [--baseline REF] [--runs 5000] [--burst 1000] [--tracked 20000] [--quick]
                                   [--profile DIR]

The baseline is the bridge package as it was at ``REF`` (``git archive``), run
from a temporary folder; the new code is this working tree. Both talk to the
same simulator (this tree's, served from this process), each on a fresh SQLite
database. Printed side by side, with the ratio new/old:

- catch-up CPU per run: the bridge process's CPU from a burst of new runs to
  the last first sighting, routed nowhere (the poller alone: read, diff,
  snapshot, cursor); beside it the official SDK alone paging the same runs,
  and a plain aiohttp pager.
- Oz requests in the four ticks after a burst, and until the burst has
  settled; idle requests per tick.
- the simulator's CPU per page of ``GET /agent/runs`` at 10,000 visible runs.
- peak RSS after catching up with ``--tracked`` runs; start to ``/readyz``.

Timings on a shared machine are noisy: read the ratios, not the absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from io import BytesIO
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bridge.sim import Simulator, running_simulator

REPO = Path(__file__).resolve().parents[1]
API_KEY = "bench-key"
TICKS = os.sysconf("SC_CLK_TCK")


def checkout(ref: str, into: Path) -> Path:
    """The ``bridge`` package as it was at ``ref``, unpacked under ``into``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "bridge"], check=True, capture_output=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Bridge:
    """One ``oz-bridge run`` process from the given source tree."""

    def __init__(
        self, tree: Path, sim_url: str, poll: dict[str, Any], routes: list[dict[str, Any]],
        targets: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        self.tree, self.sim_url, self.poll, self.routes = tree, sim_url, poll, routes
        self.targets = targets or {"sink": {"type": "console"}}
        self.port = 0
        self.proc: asyncio.subprocess.Process | None = None
        self.http = aiohttp.ClientSession()
        self.workdir = Path(tempfile.mkdtemp(prefix="poll-cost-"))

    async def start(self) -> float:
        """Spawn; returns the seconds from spawn to the first 200 on /readyz."""
        self.port = free_port()
        config = {"poll": self.poll, "targets": self.targets, "routes": self.routes}
        (self.workdir / "bridge.yaml").write_text(yaml.safe_dump(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OZ_", "WARP_", "SLACK_"))}
        env.update(
            PYTHONPATH=str(self.tree),
            WARP_API_KEY=API_KEY,
            OZ_API_BASE_URL=f"{self.sim_url}/api/v1",
            OZ_BRIDGE_DATABASE_URL=f"sqlite:///{self.workdir / 'bridge.db'}",
            OZ_BRIDGE_HOST="127.0.0.1",
            OZ_BRIDGE_PORT=str(self.port),
            OZ_BRIDGE_LOG_LEVEL="error",
        )
        spawned = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridge.cli", "run", "--config", str(self.workdir / "bridge.yaml"),
            env=env, cwd=self.workdir, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await until(self.ready, 60, "/readyz")
        return time.monotonic() - spawned

    async def ready(self) -> bool:
        try:
            async with self.http.get(f"http://127.0.0.1:{self.port}/readyz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    async def metric(self, name: str) -> float:
        async with self.http.get(f"http://127.0.0.1:{self.port}/metrics") as response:
            text = await response.text()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
        await self.http.close()
        shutil.rmtree(self.workdir, ignore_errors=True)  # a 100,000-run database is not small


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


NOWHERE = [{"name": "plans only", "events": ["artifact.plan"], "to": ["sink"]}]  # runs without artifacts: no rows


def burst(sim: Simulator, runs: int) -> None:
    for _ in range(runs):
        sim.create_run(state="INPROGRESS")


async def catch_up(tree: Path, sim: Simulator, url: str, runs: int, profile: Path | None) -> dict[str, float]:
    sim.reset()
    bridge = Bridge(tree, url, {"interval": 0.5, "sweep": 15, "lookback": 30, "page_size": 100}, NOWHERE)
    spy: asyncio.subprocess.Process | None = None
    try:
        startup = await bridge.start()
        if profile is not None:
            profile.parent.mkdir(parents=True, exist_ok=True)
            spy = await asyncio.create_subprocess_exec(
                py_spy(), "record", "--format", "raw", "--rate", "200", "--pid", str(bridge.pid),
                "-o", str(profile), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            await asyncio.sleep(1)
        before = cpu_seconds(bridge.pid)
        burst(sim, runs)

        async def seen_all() -> bool:
            return await bridge.metric('oz_bridge_events_total{type="run.created"}') >= runs

        await until(seen_all, 900, "every run's first sighting")
        return {"cpu_ms_per_run": (cpu_seconds(bridge.pid) - before) * 1000 / runs, "startup_s": startup}
    finally:
        if spy is not None:
            spy.send_signal(2)
            await spy.wait()
        await bridge.close()


def py_spy() -> str:
    beside = Path(sys.executable).with_name("py-spy")  # installed into the same virtualenv
    return str(beside) if beside.exists() else "py-spy"


def hottest(profile: Path, top: int = 12) -> list[tuple[str, float]]:
    """The functions with the most samples on their own (leaf frames), from a py-spy raw profile."""
    own: dict[str, int] = {}
    total = 0
    for line in profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        own[leaf] = own.get(leaf, 0) + int(count)
        total += int(count)
    ranked = sorted(own.items(), key=lambda item: -item[1])[:top]
    return [(frame, 100 * n / total) for frame, n in ranked]


async def after_burst(tree: Path, sim: Simulator, url: str, runs: int, interval: float) -> dict[str, float]:
    """Requests in the four ticks after a burst and until it settled (2 lookbacks later), and idle per tick."""
    sim.reset()
    poll = {"interval": interval, "sweep": interval, "lookback": 2 * interval, "page_size": 100}
    bridge = Bridge(tree, url, poll, NOWHERE)

    def requests() -> int:
        return len([r for r in sim.requests("/api/v1/agent/runs") if r.path == "/api/v1/agent/runs"])

    try:
        await bridge.start()
        await asyncio.sleep(3 * interval)  # past the first sweeps
        polls, asked = await bridge.metric("oz_bridge_polls_total"), requests()
        await asyncio.sleep(4 * interval)
        idle = (requests() - asked) / max(1.0, await bridge.metric("oz_bridge_polls_total") - polls)
        asked = requests()
        burst(sim, runs)
        await asyncio.sleep(4 * interval)
        in_window = requests() - asked
        await asyncio.sleep(4 * interval)
        return {"idle_per_tick": idle, "requests_4_ticks": in_window, "requests_8_ticks": requests() - asked}
    finally:
        await bridge.close()


SDK_PAGER = """
import asyncio, sys, time
from oz_agent_sdk import AsyncOzAPI, DefaultAioHttpClient
async def main():
    client = AsyncOzAPI(api_key=sys.argv[2], base_url=sys.argv[1], http_client=DefaultAioHttpClient(), max_retries=0)
    started = time.process_time()
    n = 0
    async for _run in client.agent.runs.list(sort_by="updated_at", sort_order="asc", limit=100):
        n += 1
    print(time.process_time() - started, n)
    await client.close()
asyncio.run(main())
"""

PLAIN_PAGER = """
import asyncio, json, sys, time
import aiohttp
async def main():
    headers = {"Authorization": "Bearer " + sys.argv[2]}
    started, n, cursor = time.process_time(), 0, None
    async with aiohttp.ClientSession(headers=headers) as http:
        while True:
            params = {"sort_by": "updated_at", "sort_order": "asc", "limit": "100"}
            params.update({"cursor": cursor} if cursor else {})
            async with http.get(sys.argv[1] + "/agent/runs", params=params) as response:
                body = json.loads(await response.read())
            n += len(body["runs"])
            cursor = body["page_info"]["next_cursor"]
            if not body["page_info"]["has_next_page"]:
                break
    print(time.process_time() - started, n)
asyncio.run(main())
"""

LISTING_CPU = """
import sys, time
from datetime import timedelta
from bridge.sim import Simulator, SimClock, format_ts
from datetime import UTC, datetime
t0 = datetime(2026, 1, 1, tzinfo=UTC)
clock = SimClock(frozen_at=t0)
sim = Simulator(api_key="k", clock=clock)
for i in range(10_000):
    clock.advance(0.001)
    sim.create_run()
query = [("sort_by", "updated_at"), ("sort_order", "asc"), ("limit", "100"), ("updated_after", format_ts(t0))]
started, cursor = time.process_time(), None
for _ in range(20):
    body = sim.list_runs(query + ([("cursor", cursor)] if cursor else []))
    cursor = body["page_info"]["next_cursor"]
print((time.process_time() - started) / 20)
"""


async def pager_cpu(script: str, url: str) -> float:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, f"{url}/api/v1", API_KEY, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    cpu, count = out.decode().split()
    return float(cpu) * 1000 / int(count)


def listing_cpu(tree: Path) -> float:
    # cwd matters: ``-c`` puts the working directory first on sys.path.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", LISTING_CPU], env=env, cwd=tree, capture_output=True, text=True)
    return float(out.stdout.strip()) * 1000


async def tracked_rss(tree: Path, sim: Simulator, url: str, runs: int) -> float:
    sim.reset()
    bridge = Bridge(tree, url, {"interval": 0.5, "sweep": 15, "lookback": 30, "page_size": 100}, NOWHERE)
    try:
        await bridge.start()
        burst(sim, runs)

        async def seen_all() -> bool:
            return await bridge.metric('oz_bridge_events_total{type="run.created"}') >= runs

        await until(seen_all, 1800, "every run tracked")
        await asyncio.sleep(2)
        return peak_rss_mib(bridge.pid)
    finally:
        await bridge.close()


def row(name: str, old: float, new: float, goal: str, unit: str = "") -> str:
    ratio = f"{new / old:.2f}" if old else "-"
    return f"{name:<46} {old:>10.3f} {new:>10.3f} {ratio:>7}  {unit:<8} {goal}"


async def main(args: argparse.Namespace) -> None:
    interval = 5.0 if args.quick else 15.0
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="poll-cost-old-") as tmp:
        trees = {"old": checkout(args.baseline, Path(tmp)), "new": REPO}
        sim = Simulator(api_key=API_KEY)
        async with AsyncExitStack() as stack:
            url = await stack.enter_async_context(running_simulator(sim))
            # Each measure runs old then new, so both meet the same machine load at about the same time.
            for name, tree in trees.items():
                profile = args.profile / f"catch-up-{name}.txt" if args.profile else None
                results[name] = await catch_up(tree, sim, url, args.runs, profile)
            sim.reset()
            burst(sim, args.runs)
            sdk, plain = await pager_cpu(SDK_PAGER, url), await pager_cpu(PLAIN_PAGER, url)
            if args.catch_up_only:
                print(json.dumps({"old": results["old"], "new": results["new"], "sdk_ms_per_run": sdk}))
                return
            for name, tree in trees.items():
                results[name].update(await after_burst(tree, sim, url, args.burst, interval))
            for name, tree in trees.items():
                results[name]["listing_ms"] = listing_cpu(tree)
            if args.tracked:
                for name, tree in trees.items():
                    results[name]["rss_mib"] = await tracked_rss(tree, sim, url, args.tracked)
    old, new = results["old"], results["new"]
    print(f"poll cost: baseline {args.baseline} against this tree; {args.runs} runs catch-up, {args.burst}-run burst")
    print(f"{'measure':<46} {'old':>10} {'new':>10} {'new/old':>7}  {'unit':<8} goal")
    print(row("catch-up CPU per run (poller alone)", old["cpu_ms_per_run"], new["cpu_ms_per_run"], "", "ms"))
    print(f"{'  the SDK alone paging the same runs':<46} {sdk:>10.3f} {'':>10} {'':>7}  {'ms':<8} new <= 3x this")
    print(f"{'  a plain aiohttp pager':<46} {plain:>10.3f}")
    print(f"{'  new / SDK paging':<46} {new['cpu_ms_per_run'] / sdk:>10.2f}")
    ticks = f"interval {interval:g} s"
    print(row(f"requests in 4 ticks after the burst ({ticks})", old["requests_4_ticks"], new["requests_4_ticks"],
              f"<= 4 + {args.burst // 100} (the burst's pages once)"))  # fmt: skip
    print(row("requests in 8 ticks after the burst (settled)", old["requests_8_ticks"], new["requests_8_ticks"], ""))
    print(row("requests per idle tick", old["idle_per_tick"], new["idle_per_tick"], "1"))
    print(row("simulator CPU per page at 10,000 runs", old["listing_ms"], new["listing_ms"], "", "ms"))
    print(row("start to /readyz", old["startup_s"], new["startup_s"], "< 2 s", "s"))
    if args.tracked:
        print(row(f"peak RSS with {args.tracked} runs tracked", old["rss_mib"], new["rss_mib"], "< 100 MiB", "MiB"))
    print(json.dumps({"old": old, "new": new, "sdk_ms_per_run": sdk, "plain_ms_per_run": plain}))
    if args.profile:
        for name in ("old", "new"):
            print(f"\nwhere the {name} bridge spends catch-up CPU (py-spy, own samples):")
            for frame, share in hottest(args.profile / f"catch-up-{name}.txt"):
                print(f"  {share:5.1f}%  {frame}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.poll_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="ed13263", help="git ref of the old code (default: before issue 8)")
    parser.add_argument("--runs", type=int, default=5000, help="runs in the catch-up burst")
    parser.add_argument("--burst", type=int, default=1000, help="runs in the burst whose requests are counted")
    parser.add_argument("--tracked", type=int, default=20000, help="runs tracked for the RSS figure (0: skip)")
    parser.add_argument("--quick", action="store_true", help="interval 5 s instead of 15 s for the request count")
    parser.add_argument("--profile", type=Path, help="folder for py-spy profiles of the catch-up (py-spy on PATH)")
    parser.add_argument("--catch-up-only", action="store_true", help="only the catch-up CPU and the pagers")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
