"""The benchmark suite: every measure of issue 8 against its baseline, interleaved, in one table.

    python -m benchmarks [--quick] [--rounds N] [--only a,b] [--out PATH] [--no-write]

Each measure runs the real ``oz-bridge run`` (this tree) and its baseline in the same round, one
after the other; rounds repeat the whole list of measures, so a change in the machine's load falls
on every measure and its baseline alike. The table holds the medians over the rounds and the
ratio of the medians (oz-bridge / baseline), each goal beside its figure. Measures (``--only``):

- startup: process start to ``/readyz`` on a fresh SQLite database, against a Python process that
  only imports the bridge;
- claim: one delivery claim cycle with a growing backlog of pending rows, against the smallest backlog;
- delivery: a pre-filled outbox drained by the bridge (SQLite, PostgreSQL), against a plain aiohttp
  client posting the same bodies 16 at a time to the same receiver (the ceiling);
- catch-up: the bridge's CPU per run catching up with a burst, against the SDK paging the same runs;
- traffic: Oz requests and response bytes idle, in the tick of a burst and in the four ticks after it,
  against a naive poller retrieving each in-flight run every tick (rounds side by side: they count,
  and counts do not depend on the machine's load);
- inbound: ``POST /slack/events`` at a fixed rate and closed loop, against a bare aiohttp handler
  with slack-sdk's ``SignatureVerifier`` (the load generator in its own process);
- ack: detection-to-ack latency (p50, p99, max) of ``run.created`` webhooks, against the poll interval;
- rss: peak RSS with 0 and two larger counts of tracked runs, against an idle bridge (and the
  import-only process for 0).

``--quick``: one round at small sizes (about two minutes); its table is a smoke test of the
machinery, not a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import ack_latency, delivery_cost, inbound_latency, poll_cost, poll_traffic
from benchmarks.inbound_latency import Load

REPO = Path(__file__).resolve().parents[1]
DATABASES = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Scale:
    """The sizes of one variant of the suite."""

    name: str
    drain_runs: tuple[int, int]  # 5 events a run
    drain_measured: int  # events timed of each drain (the rest of a larger backlog stays pending)
    claim_backlogs: tuple[int, int, int]  # pending rows
    catch_up_runs: int
    load: Load
    ack_interval: float
    ack_runs: int
    ack_spread: float
    tracked: tuple[int, int]
    traffic_interval: float
    traffic_burst: int
    rounds: int


FULL = Scale("full", (1_000, 10_000), 10_000, (1_000, 5_000, 50_000), 5_000, Load(200.0, 6.0, 16), 2.0, 150, 15.0,
             (10_000, 100_000), 15.0, 1_000, 3)  # fmt: skip
QUICK = Scale("quick", (200, 1_000), 2_000, (1_000, 2_500, 5_000), 1_000, Load(200.0, 3.0, 16), 1.0, 60, 6.0,
              (1_000, 10_000), 3.0, 300, 1)  # fmt: skip
# For the suite's own test: every row, nothing measured worth reading.
SMOKE = Scale("smoke", (20, 40), 150, (100, 150, 200), 50, Load(50.0, 0.5, 4), 0.5, 6, 0.5, (30, 60), 0.5, 30, 1)


# ---- rows and the table -------------------------------------------------------------------------------

Medians = dict[str, tuple[float, float]]  # row key: (oz-bridge, baseline)
Judge = Callable[[float, float, Medians], bool]


@dataclass(frozen=True)
class Row:
    key: str
    measure: str
    against: str
    unit: str
    goal: str = "—"
    judge: Judge | None = None
    digits: int = 1


def ratio_of(ours: float, base: float) -> float:
    return ours / base if base else float("nan")


def number(value: float, unit: str, digits: int) -> str:
    return f"{value:,.{digits}f} {unit}".strip()


def table(rows: Sequence[Row], samples: dict[str, list[tuple[float, float]]], failures: dict[str, str]) -> str:
    medians: Medians = {
        key: (statistics.median(s[0] for s in got), statistics.median(s[1] for s in got))
        for key, got in samples.items()
        if got
    }
    lines = ["| measure | oz-bridge | baseline | against | ratio | goal | result |", "|---|--:|--:|---|--:|---|---|"]
    for row in rows:
        if row.key not in medians:
            why = failures.get(row.key, "not measured")
            lines.append(f"| {row.measure} | — | — | {row.against} | — | {row.goal} | {why} |")
            continue
        ours, base = medians[row.key]
        verdict = "—" if row.judge is None else "met" if row.judge(ours, base, medians) else "missed"
        lines.append(
            f"| {row.measure} | {number(ours, row.unit, row.digits)} | {number(base, row.unit, row.digits)} "
            f"| {row.against} | {ratio_of(ours, base):.2f} | {row.goal} | {verdict} |"
        )
    return "\n".join(lines)


# ---- what the measures share ----------------------------------------------------------------------------


@dataclass
class Context:
    scale: Scale
    workdir: Path
    trees: delivery_cost.Trees
    pg_names: list[str] = field(default_factory=list)  # dropped at the end
    templates: dict[tuple[str, int], str] = field(default_factory=dict)

    async def database(self, kind: str) -> str:
        url = await delivery_cost.new_database(kind, self.workdir)
        self._note(url)
        return url

    async def clone(self, url: str) -> str:
        copy = await delivery_cost.clone_database(url, self.workdir)
        self._note(copy)
        return copy

    def _note(self, url: str) -> None:
        if url.startswith("postgresql"):
            self.pg_names.append(url.rsplit("/", 1)[1])

    async def ensure_templates(self, runs: Sequence[int]) -> None:
        """Pre-filled outboxes (``runs`` x 5 events), once per database and size: claims read them as they
        are, drains work on clones."""
        cases = []
        for kind in DATABASES:
            for count in runs:
                if (kind, count) not in self.templates:
                    self.templates[kind, count] = await self.database(kind)
                    cases.append([self.templates[kind, count], count])
        if cases:
            await asyncio.to_thread(delivery_cost.run_child, self.trees, "new", "prefills", cases=cases)

    async def discard(self, url: str) -> None:
        if url.startswith("sqlite"):
            for path in self.workdir.glob(Path(url.removeprefix("sqlite:///")).name + "*"):
                path.unlink()
            return
        import asyncpg

        admin = await asyncpg.connect(delivery_cost.PG_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        await admin.close()

    async def close(self) -> None:
        if not self.pg_names:
            return
        import asyncpg

        admin = await asyncpg.connect(delivery_cost.PG_ADMIN)
        for name in self.pg_names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


Figures = dict[str, tuple[float, float]]


class Measure:
    """One measure: rows, and a round that yields (oz-bridge, baseline) for each row."""

    name = ""
    side_by_side = False  # True: all rounds at once (``rounds``), not one per pass

    def __init__(self, ctx: Context) -> None:
        self.ctx, self.scale = ctx, ctx.scale
        self.stack = contextlib.AsyncExitStack()  # what prepare started, closed by close

    def rows(self) -> list[Row]:
        raise NotImplementedError

    async def prepare(self) -> None:
        pass

    async def round(self, n: int) -> Figures:
        raise NotImplementedError

    async def rounds(self, count: int) -> list[Figures]:
        raise NotImplementedError

    async def close(self) -> None:
        await self.stack.aclose()


IMPORTS_ONLY = """
import bridge.app, bridge.cli
from pathlib import Path
status = Path("/proc/self/status").read_text().splitlines()
print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024)
"""


async def imports_only() -> tuple[float, float]:
    """Seconds from spawn to exit, and peak RSS (MiB), of a Python process that only imports the bridge."""
    began = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", IMPORTS_ONLY, cwd=REPO, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    out, _ = await proc.communicate()
    return time.monotonic() - began, float(out.decode().strip())


class Startup(Measure):
    name = "startup"

    def rows(self) -> list[Row]:
        return [Row("startup", "start to /readyz, fresh SQLite database", "Python importing the bridge", "s",
                    "< 2 s", lambda v, _b, _m: v < 2.0, 2)]  # fmt: skip

    async def prepare(self) -> None:
        self.sim = await self.stack.enter_async_context(poll_traffic.CountingSim())

    async def round(self, n: int) -> Figures:
        bare, _rss = await imports_only()
        bridge = poll_cost.Bridge(REPO, self.sim.url, poll_traffic.bridge_poll(15.0), poll_traffic.NOWHERE)
        try:
            started = await bridge.start()
        finally:
            await bridge.close()
        return {"startup": (started, bare)}


class Claim(Measure):
    name = "claim"

    def rows(self) -> list[Row]:
        first = self.scale.claim_backlogs[0]
        return [
            Row(f"claim {kind} {backlog}", f"one claim cycle, {label}, {backlog:,} pending rows",
                f"the same with {first:,} pending", "ms", "≤ 1.5x: independent of backlog",
                lambda v, b, _m: ratio_of(v, b) <= 1.5, 2)
            for kind, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL"))
            for backlog in self.scale.claim_backlogs[1:]
        ]  # fmt: skip

    async def prepare(self) -> None:
        await self.ctx.ensure_templates([backlog // 5 for backlog in self.scale.claim_backlogs])

    async def round(self, n: int) -> Figures:
        figures: Figures = {}
        first, *rest = self.scale.claim_backlogs
        for kind in DATABASES:
            cases = [[self.ctx.templates[kind, backlog // 5], backlog] for backlog in self.scale.claim_backlogs]
            got = await asyncio.to_thread(
                delivery_cost.run_child, self.ctx.trees, "new", "claims", cases=cases, cycles=30
            )
            for backlog in rest:
                figures[f"claim {kind} {backlog}"] = (got[str(backlog)], got[str(first)])
        return figures


class Delivery(Measure):
    name = "delivery"

    def rows(self) -> list[Row]:
        small, large = self.scale.drain_runs

        def small_goal(v: float, b: float, _m: Medians) -> bool:
            return v >= 1_000 and v / b >= 0.40

        def near_small(kind: str) -> Judge:
            return lambda v, _b, m: v >= 0.9 * m[f"delivery {kind} {small}"][0]

        rows = []
        for kind, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
            rows.append(Row(f"delivery {kind} {small}", f"delivery, {small:,} runs ({5 * small:,} events), {label}",
                            "plain aiohttp client, 16 at a time", "ev/s",
                            "≥ 1,000 ev/s and ≥ 0.40 of the ceiling" if kind == "sqlite" else "—",
                            small_goal if kind == "sqlite" else None, 0))  # fmt: skip
        for kind, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
            timed = min(self.scale.drain_measured, 5 * large)
            of = f", the first {timed:,} timed" if timed < 5 * large else ""
            rows.append(Row(f"delivery {kind} {large}",
                            f"delivery, {large:,} runs ({5 * large:,} events pending{of}), {label}",
                            "plain aiohttp client, 16 at a time", "ev/s",
                            f"≥ 0.90 of the {small:,}-run rate", near_small(kind), 0))  # fmt: skip
        return rows

    async def prepare(self) -> None:
        self.services = delivery_cost.Services(self.ctx.trees)
        await asyncio.to_thread(self.services.start)
        await self.ctx.ensure_templates(self.scale.drain_runs)

    async def round(self, n: int) -> Figures:
        figures: Figures = {}
        for runs in self.scale.drain_runs:
            # The ceiling does not depend on a backlog: it posts as many bodies as the drain times.
            timed = min(self.scale.drain_measured, 5 * runs)
            ceiling = await asyncio.to_thread(
                delivery_cost.measure_ceiling, self.ctx.trees, self.services, max(1, timed // 5)
            )
            for kind in DATABASES:
                url = await self.ctx.clone(self.ctx.templates[kind, runs])
                try:
                    got = await asyncio.to_thread(
                        delivery_cost.drain, self.ctx.trees, self.services, "new", kind, runs, self.ctx.workdir,
                        url=url, events=timed,
                    )  # fmt: skip
                finally:
                    await self.ctx.discard(url)
                figures[f"delivery {kind} {runs}"] = (got["events_per_s"], ceiling)
        return figures

    async def close(self) -> None:
        await asyncio.to_thread(self.services.stop)
        await super().close()


class CatchUp(Measure):
    name = "catch-up"

    def rows(self) -> list[Row]:
        return [Row("catch-up", f"catch-up CPU per run ({self.scale.catch_up_runs:,}-run burst, poller alone)",
                    "the SDK alone paging the same runs", "ms", "≤ 3x", lambda v, b, _m: ratio_of(v, b) <= 3,
                    3)]  # fmt: skip

    async def prepare(self) -> None:
        from bridge.sim import Simulator, running_simulator

        self.sim = Simulator(api_key=poll_cost.API_KEY)
        self.url = await self.stack.enter_async_context(running_simulator(self.sim))

    async def round(self, n: int) -> Figures:
        runs = self.scale.catch_up_runs
        ours = await poll_cost.catch_up(REPO, self.sim, self.url, runs, None)
        self.sim.reset()
        poll_cost.burst(self.sim, runs)
        sdk = await poll_cost.pager_cpu(poll_cost.SDK_PAGER, self.url)
        return {"catch-up": (ours["cpu_ms_per_run"], sdk)}


class Traffic(Measure):
    name = "traffic"
    side_by_side = True

    def rows(self) -> list[Row]:
        interval, burst = self.scale.traffic_interval, self.scale.traffic_burst
        ticks = poll_traffic.TICKS_AFTER
        pages = -(-burst // 100)
        naive = "naive poller: retrieves each in-flight run every tick"
        return [
            Row("idle requests", f"Oz requests per idle tick (interval {interval:g} s)", naive, "", "1.0",
                lambda v, _b, _m: v <= 1.0 + 1e-9, 2),
            Row("idle bytes", "response bytes per idle tick", naive, "B", digits=0),
            Row("burst requests", f"Oz requests in the tick of a {burst:,}-run burst", naive, ""),
            Row("burst bytes", "response bytes in the tick of the burst", naive, "B", digits=0),
            Row("after requests", f"Oz requests in the {ticks} ticks ({ticks * interval:g} s) after the burst",
                naive, "",
                f"≤ {ticks + pages}: 1 a tick + the burst's {pages} pages once",
                lambda v, _b, _m: v <= ticks + pages, 0),
            Row("after bytes", f"response bytes in the {ticks} ticks after the burst", naive, "B", digits=0),
        ]  # fmt: skip

    async def rounds(self, count: int) -> list[Figures]:
        got = await asyncio.gather(
            *(poll_traffic.traffic(self.scale.traffic_interval, self.scale.traffic_burst) for _ in range(count))
        )
        keys = {"idle requests": "idle_requests_per_tick", "idle bytes": "idle_bytes_per_tick",
                "burst requests": "burst_tick_requests", "burst bytes": "burst_tick_bytes",
                "after requests": "after_requests", "after bytes": "after_bytes"}  # fmt: skip
        return [{row: (one["bridge"][key], one["naive"][key]) for row, key in keys.items()} for one in got]


class Inbound(Measure):
    name = "inbound"

    def rows(self) -> list[Row]:
        load = self.scale.load
        bare = "bare aiohttp handler + SignatureVerifier"
        return [
            Row("inbound p50", f"POST /slack/events p50 at {load.rate:g} req/s (replies)", bare, "ms", digits=2),
            Row("inbound p99", f"POST /slack/events p99 at {load.rate:g} req/s (replies)", bare, "ms", "< 20 ms",
                lambda v, _b, _m: v < 20.0, 2),
            Row("inbound closed", f"POST /slack/events closed loop, {load.inflight} in flight", bare, "req/s",
                "≥ 0.50 of bare", lambda v, b, _m: ratio_of(v, b) >= 0.5, 0),
        ]  # fmt: skip

    async def prepare(self) -> None:
        self.sim, self.sim_url = await inbound_latency.start_simulator()

    async def round(self, n: int) -> Figures:
        tag = f"{uuid.uuid4().hex[:6]}"
        bare = await inbound_latency.one_round("bare", "replies", self.sim_url, self.scale.load, tag + "b")
        ours = await inbound_latency.one_round("bridge", "replies", self.sim_url, self.scale.load, tag + "o")

        def pick(got: dict[str, Any], phase: str, key: str) -> float:
            return float(got[phase][key])

        return {
            "inbound p50": (pick(ours, "fixed_rate", "p50_ms"), pick(bare, "fixed_rate", "p50_ms")),
            "inbound p99": (pick(ours, "fixed_rate", "p99_ms"), pick(bare, "fixed_rate", "p99_ms")),
            "inbound closed": (pick(ours, "closed_loop", "per_second"), pick(bare, "closed_loop", "per_second")),
        }

    async def close(self) -> None:
        self.sim.terminate()
        await self.sim.wait()
        await super().close()


class Ack(Measure):
    name = "ack"

    def rows(self) -> list[Row]:
        interval = f"poll interval ({self.scale.ack_interval:g} s)"
        what = f"detection-to-ack, {self.scale.ack_runs} runs over {self.scale.ack_spread:g} s"
        return [Row(f"ack {q}", f"{what}: {q}", interval, "s", digits=2) for q in ("p50", "p99", "max")]

    async def round(self, n: int) -> Figures:
        s = self.scale
        got = await ack_latency.ack_latency(s.ack_interval, s.ack_runs, s.ack_spread)
        return {f"ack {q}": (got[f"{q}_s"], s.ack_interval) for q in ("p50", "p99", "max")}


class Rss(Measure):
    name = "rss"

    def rows(self) -> list[Row]:
        small, large = self.scale.tracked
        idle = "the same bridge tracking 0 runs"
        return [
            Row("rss 0", "peak RSS, 0 tracked runs", "Python importing the bridge", "MiB"),
            Row("rss small", f"peak RSS, {small:,} tracked runs", idle, "MiB"),
            Row("rss large", f"peak RSS, {large:,} tracked runs", idle, "MiB", "< 100 MiB",
                lambda v, _b, _m: v < 100.0),
        ]  # fmt: skip

    async def prepare(self) -> None:
        self.sims = [await self.stack.enter_async_context(poll_traffic.CountingSim()) for _ in range(3)]
        for sim, runs in zip(self.sims[1:], self.scale.tracked, strict=True):
            await sim.burst(runs)  # once: creating runs costs the simulator about 0.5 ms each

    async def round(self, n: int) -> Figures:
        _seconds, imports = await imports_only()
        idle = await poll_traffic.tracked_rss(self.sims[0], 0)
        small = await poll_traffic.tracked_rss(self.sims[1], self.scale.tracked[0])
        large = await poll_traffic.tracked_rss(self.sims[2], self.scale.tracked[1])
        return {"rss 0": (idle, imports), "rss small": (small, idle), "rss large": (large, idle)}


MEASURES: list[type[Measure]] = [Startup, Claim, Delivery, CatchUp, Traffic, Inbound, Ack, Rss]


# ---- the run ----------------------------------------------------------------------------------------------


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Outcome:
    rows: list[Row]
    samples: dict[str, list[tuple[float, float]]]
    failures: dict[str, str]
    seconds: dict[str, float]


async def run(scale: Scale, rounds: int, only: Sequence[str]) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="oz-bench-") as tmp:
        ctx = Context(scale, Path(tmp), delivery_cost.Trees(None, Path(tmp)))
        measures = [kind(ctx) for kind in MEASURES if kind.name in only]
        rows = [row for measure in measures for row in measure.rows()]
        samples: dict[str, list[tuple[float, float]]] = {row.key: [] for row in rows}
        failures: dict[str, str] = {}
        seconds = dict.fromkeys((m.name for m in measures), 0.0)
        ready: list[Measure] = []

        def failed(measure: Measure, what: str) -> None:
            traceback.print_exc()
            for row in measure.rows():
                failures.setdefault(row.key, f"failed ({what}): see the log")

        def keep(measure: Measure, figures: Figures) -> None:
            for key, pair in figures.items():
                samples[key].append(pair)

        try:
            for measure in measures:
                began = time.monotonic()
                try:
                    await measure.prepare()
                    ready.append(measure)
                except Exception:
                    failed(measure, "prepare")
                seconds[measure.name] += time.monotonic() - began
            for measure in [m for m in ready if m.side_by_side]:
                say(f"{measure.name}: {rounds} round(s) side by side")
                began = time.monotonic()
                try:
                    for figures in await measure.rounds(rounds):
                        keep(measure, figures)
                except Exception:
                    failed(measure, "rounds")
                seconds[measure.name] += time.monotonic() - began
            for n in range(rounds):
                for measure in [m for m in ready if not m.side_by_side]:
                    say(f"round {n + 1}/{rounds}: {measure.name}")
                    began = time.monotonic()
                    try:
                        keep(measure, await measure.round(n))
                    except Exception:
                        failed(measure, f"round {n + 1}")
                    seconds[measure.name] += time.monotonic() - began
        finally:
            for measure in ready:
                try:
                    await measure.close()
                except Exception:
                    traceback.print_exc()
            await ctx.close()
    return Outcome(rows, samples, failures, seconds)


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    postgres = "not reachable"
    with contextlib.suppress(Exception):

        async def version() -> str:
            import asyncpg

            admin = await asyncpg.connect(delivery_cost.PG_ADMIN, timeout=3)
            try:
                return str(await admin.fetchval("SHOW server_version"))
            finally:
                await admin.close()

        postgres = asyncio.run(version())
    return (f"{os.cpu_count()} cores, {model}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}; PostgreSQL {postgres}")  # fmt: skip


HOW_TO_READ = """\
Each row is one measure: the median over the rounds for the real `oz-bridge run` and for its baseline
(named in "against"), taken in the same run one after the other, and the ratio of the two medians
(oz-bridge / baseline). For throughput a higher ratio is better; for latency, CPU, requests, bytes and
memory a lower one. "result" holds the goal's verdict where issue 8 sets one ("—": no goal, the figure
is there to be read). Absolute figures depend on the machine and on what else it was doing (the load
average is above): read the ratios first. The traffic rows count requests and bytes the simulator
answered, which does not depend on the machine's speed, so their rounds run side by side. A `--quick`
table is a check that the suite works, not a measurement: its sizes are too small for the goals.
"""


def document(outcome: Outcome, scale: Scale, rounds: int, command: str, began: datetime, load: str) -> str:
    took = sum(outcome.seconds.values())
    parts = ", ".join(f"{name} {secs:.0f} s" for name, secs in outcome.seconds.items())
    label = {"full": "full", "quick": "quick (one round, small sizes: not the figures of record)",
             "smoke": "smoke (the suite's own test)"}[scale.name]  # fmt: skip
    return (
        "# Performance\n\n"
        'Written by `python -m benchmarks` (see the README\'s "Benchmark" section); run it again rather than '
        "editing this file.\n\n"
        f"- date: {began:%Y-%m-%d %H:%M} UTC\n"
        f"- machine: {machine()}\n"
        f"- load average before, after: {load}\n"
        f"- command: `{command}`\n"
        f"- variant: {label}; {rounds} round(s)\n"
        f"- took: {took / 60:.1f} min ({parts})\n\n"
        f"{table(outcome.rows, outcome.samples, outcome.failures)}\n\n"
        "## How to read it\n\n"
        f"{HOW_TO_READ}"
    )


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="one round at small sizes (about 2 minutes)")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tiny sizes, for tests
    parser.add_argument("--rounds", type=int, help="rounds of every measure (default 3; 1 with --quick)")
    parser.add_argument("--only", default=",".join(m.name for m in MEASURES),
                        help="comma-separated measures: " + ", ".join(m.name for m in MEASURES))  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "performance.md", help="where the table goes")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - {m.name for m in MEASURES}
    if unknown:
        parser.error(f"unknown measure(s) {', '.join(sorted(unknown))}")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    scale = SMOKE if args.smoke else QUICK if args.quick else FULL
    rounds = args.rounds or scale.rounds
    command = " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)])
    began, before = datetime.now(UTC), loadavg()
    outcome = asyncio.run(run(scale, rounds, args.only.split(",")))
    text = document(outcome, scale, rounds, command, began, f"{before}; {loadavg()}")
    print(text)
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        say(f"written to {args.out}")
    if outcome.failures:  # a failed measure is an error, once its table is out
        sys.exit(1)
