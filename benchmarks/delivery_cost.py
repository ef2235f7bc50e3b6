"""What delivery costs, new code beside old code in the same run.

    python benchmarks/delivery_cost.py [--baseline REF] [--quick] [--only claim,drain,replicas,artifacts,logs]

Every measure runs the code under test in its own processes: the real ``oz-bridge run``
(``PYTHONPATH`` pointing at this tree, or at a ``git archive`` of ``--baseline``), a
receiver process that only counts, and the Oz simulator. Measures:

- claim: one claim cycle (what a worker runs to find up to 16 queue heads) against
  1k / 5k / 50k pending rows, SQLite and PostgreSQL;
- drain: a pre-filled outbox of N runs x 5 events delivered by ``oz-bridge run``,
  events per second from first to last arrival, beside a plain aiohttp client posting
  the same bodies 16 at a time to the same receiver (the ceiling);
- replicas: the same drain on PostgreSQL with 1, 2 and 3 replicas;
- artifacts: one run observed with N artifacts: peak RSS, database size, time to deliver;
- logs: the cost of a disabled ``log.debug`` and of an emitted ``log.info``.

The machine may be shared: compare the ratios, not the absolute figures.
With ``--profile``, py-spy samples one bridge per drain and the table shows where its
time went (database, logging, JSON, HTTP client); ``OZ_BRIDGE_BENCH_PROFILES=DIR`` keeps
the raw samples there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
API_KEY = "bench-key"
PG_ADMIN = os.environ.get("OZ_BRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET = "hook"


# --- children: run with PYTHONPATH set to the tree under test ---------------------------------


def sample_run(n: int, artifacts: int = 3) -> dict[str, Any]:
    """A run shaped like the API's RunItem: INPROGRESS with pull requests (5 events when new)."""
    stamp = "2026-06-01T10:00:00Z"
    return {
        "run_id": f"bench-run-{n:06d}", "task_id": f"bench-task-{n:06d}", "title": f"Fix flaky test #{n}",
        "prompt": "Find why test_checkout is flaky and fix it; open a pull request. " * 4,
        "state": "INPROGRESS", "created_at": stamp, "updated_at": stamp, "source": "API",
        "creator": {"type": "USER", "uid": "u-1", "display_name": "Ada", "email": "ada@example.com"},
        "agent_config": {"name": "fixer", "environment_id": "env-1", "model_id": "auto"},
        "session_link": f"https://app.warp.dev/session/{n}", "is_sandbox_running": True,
        "artifacts": [
            {"artifact_type": "PULL_REQUEST", "created_at": f"2026-06-01T10:00:0{a}Z",
             "data": {"url": f"https://github.com/acme/shop/pull/{n * 10 + a}", "branch": f"fix-{n}-{a}"}}
            for a in range(artifacts)
        ],
    }  # fmt: skip


def events_of(n: int) -> list[Any]:
    from datetime import UTC, datetime

    from bridge.diff import diff_run

    return diff_run(None, sample_run(n), datetime(2026, 1, 1, tzinfo=UTC), "2026-06-01T10:00:01Z")


async def prefill(url: str, runs: int) -> None:
    """Queue ``runs`` x 5 events for one target, a page of 100 runs per transaction like the poller."""
    from datetime import UTC, datetime

    from bridge.store import outbox
    from bridge.store.engine import create_engine, migrate

    engine = create_engine(url)
    await migrate(engine)
    for start in range(0, runs, 100):
        async with engine.begin() as conn:
            deliveries = [(e, TARGET) for n in range(start, min(runs, start + 100)) for e in events_of(n)]
            await outbox.enqueue(conn, deliveries, datetime.now(UTC))
    await engine.dispose()


async def claim_cycles(url: str, backlog: int, cycles: int, fill: bool = True) -> dict[str, float]:
    """Median milliseconds of one claim cycle with ``backlog`` pending rows (rolled back each time).

    ``fill=False``: the database already holds the backlog (it is left as it was found).
    """
    from datetime import UTC, datetime, timedelta

    from bridge.store import outbox
    from bridge.store.engine import create_engine

    if fill:
        await prefill(url, backlog // 5)
    engine = create_engine(url)
    times = []
    for _ in range(cycles):
        began = time.perf_counter()
        now = datetime.now(UTC)
        if hasattr(outbox, "claim_due"):  # the code before queue heads
            before: Any = outbox  # its functions are gone from this tree's outbox
            async with engine.connect() as conn:
                transaction = await conn.begin()
                for target in await before.pending_targets(conn):
                    rows = await before.claim_due(conn, "bench", now, 16, timedelta(minutes=2), target=target)
                times.append(time.perf_counter() - began)
                await transaction.rollback()
        else:  # as the worker claims: one transaction through run_transaction, rolled back here
            from bridge.store.engine import run_transaction

            class Claimed(Exception):
                pass

            def work(conn: Any, now: datetime = now) -> None:  # run_transaction calls it at once
                raise Claimed(outbox.claim(conn, "bench", TARGET, now, 16, timedelta(seconds=10)))

            try:
                await run_transaction(engine, work)
            except Claimed as claimed:
                rows = claimed.args[0]
            times.append(time.perf_counter() - began)
        assert len(rows) == 16
    await engine.dispose()
    return {"claim_ms": 1000 * statistics.median(times)}


def log_cost() -> dict[str, float]:
    from bridge.logs import configure, get_logger

    with open(os.devnull, "w") as devnull:
        configure("json", "info", stream=devnull)
        log = get_logger("bench")
        calls = 100_000
        began = time.perf_counter()
        for n in range(calls):
            log.debug("delivered", run_id="r", event_id="e", target="t", attempts=n)
        debug_ns = (time.perf_counter() - began) / calls * 1e9
        lines = 10_000
        began = time.perf_counter()
        for n in range(lines):
            log.info("delivered", run_id="r", event_id="e", target="t", attempts=n)
        info_ns = (time.perf_counter() - began) / lines * 1e9
    return {"disabled_debug_ns": debug_ns, "emitted_info_ns": info_ns}


async def ceiling(url: str, runs: int) -> None:
    """A plain aiohttp client posting the same bodies, 16 at a time."""
    import aiohttp

    bodies = [json.dumps(e.to_payload(), separators=(",", ":")).encode() for n in range(runs) for e in events_of(n)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    async with aiohttp.ClientSession() as http:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                async with http.post(url, data=body, headers={"content-type": "application/json"}) as response:
                    await response.read()

        await asyncio.gather(*(worker() for _ in range(16)))


async def receiver() -> None:
    """Counts posts; /stats gives the count and the monotonic times of the first and last."""
    from aiohttp import web

    state: dict[str, Any] = {"count": 0, "first": None, "last": None}

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        now = time.monotonic()
        state["count"] += 1
        state["first"] = state["first"] or now
        state["last"] = now
        return web.Response(text="ok")

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(state)

    async def reset(_request: web.Request) -> web.Response:
        state.update(count=0, first=None, last=None)
        return web.json_response(state)

    app = web.Application(client_max_size=1 << 30)
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"PORT={runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


def child(kind: str, args: dict[str, Any]) -> None:
    if kind == "prefill":
        asyncio.run(prefill(args["url"], args["runs"]))
    elif kind == "prefills":  # several databases from one process: the suite's templates
        for url, runs in args["cases"]:
            asyncio.run(prefill(url, runs))
    elif kind == "claim":
        figures = asyncio.run(claim_cycles(args["url"], args["backlog"], args["cycles"], args.get("fill", True)))
        print(json.dumps(figures))
    elif kind == "claims":  # several pre-filled databases, one process: {backlog: claim ms}
        figures = {str(backlog): asyncio.run(claim_cycles(url, backlog, args["cycles"], fill=False))["claim_ms"]
                   for url, backlog in args["cases"]}  # fmt: skip
        print(json.dumps(figures))
    elif kind == "logs":
        print(json.dumps(log_cost()))
    elif kind == "ceiling":
        asyncio.run(ceiling(args["url"], args["runs"]))
    elif kind == "receiver":
        asyncio.run(receiver())


# --- the parent: orchestrates, measures, prints -------------------------------------------------


class Trees:
    """Where each code version lives: this tree, and a git archive of the baseline ref (if any)."""

    def __init__(self, baseline: str | None, workdir: Path) -> None:
        self.paths = {"new": HERE}
        if baseline is None:  # the suite compares against outside baselines, not older code
            return
        old = workdir / "baseline"
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(HERE), "archive", baseline], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        self.paths["old"] = old

    def env(self, code: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OZ_", "WARP_", "SLACK_"))}
        return {**env, "PYTHONPATH": str(self.paths[code]), **extra}


def run_child(trees: Trees, code: str, kind: str, **args: Any) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "child", kind, json.dumps(args)],
        env=trees.env(code), capture_output=True, text=True, check=True, timeout=1800,
    )  # fmt: skip
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


async def new_database(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
    import asyncpg

    name = f"ozb_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


async def clone_database(url: str, workdir: Path) -> str:
    """A copy of a pre-filled database (SQLite: the file; PostgreSQL: ``CREATE DATABASE … TEMPLATE``)."""
    if url.startswith("sqlite"):
        import shutil

        source = Path(url.removeprefix("sqlite:///"))
        copy = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(source, copy)
        wal = source.with_name(source.name + "-wal")  # only there if the last close did not checkpoint
        if wal.exists():
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        return f"sqlite:///{copy}"
    import asyncpg

    name = f"ozb_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{url.rsplit("/", 1)[1]}"')
    await admin.close()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


async def drop_databases() -> None:
    import asyncpg

    admin = await asyncpg.connect(PG_ADMIN)
    for row in await admin.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'ozb_bench_%'"):
        await admin.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    await admin.close()


class Services:
    """The receiver and the simulator, each in its own process, for the whole run."""

    def __init__(self, trees: Trees) -> None:
        self.trees = trees
        self.procs: list[subprocess.Popen[str]] = []
        self.receiver = ""
        self.sim = ""

    def start(self) -> None:
        rec = self._spawn([sys.executable, __file__, "child", "receiver", "{}"], "PORT=")
        self.receiver = f"http://127.0.0.1:{rec}"
        sim = self._spawn([sys.executable, "-m", "bridge.sim", "--port", "0", "--api-key", API_KEY], "OZ_SIM_URL=")
        self.sim = sim

    def _spawn(self, command: list[str], marker: str) -> str:
        proc = subprocess.Popen(command, env=self.trees.env("new"), stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(marker):
                return line.split("=", 1)[1].strip()
        raise RuntimeError(f"{command} did not start")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait()

    def stats(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(self.receiver + "/stats") as response:
            return dict(json.loads(response.read()))

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(self.receiver + "/reset", method="POST")).read()


def bridge_config(workdir: Path, receiver_url: str) -> Path:
    import yaml

    path = workdir / "bridge.yaml"
    config = {
        "poll": {"interval": 2, "start": "now"},
        "delivery": {"concurrency": 16},
        "targets": {TARGET: {"type": "webhook", "url": receiver_url + "/hook", "timeout": 10}},
        "routes": [{"name": "all", "events": ["*"], "to": [TARGET]}],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_for(services: Services, count: int, within: float, watch: Sequence[subprocess.Popen[bytes]] = ()) -> None:
    deadline = time.monotonic() + within
    while services.stats()["count"] < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {services.stats()['count']} of {count} arrived")
        for proc in watch:
            if proc.poll() is not None:
                raise RuntimeError("a bridge exited during the measure")
        time.sleep(0.05)


def profile_shares(path: Path) -> dict[str, float]:
    """Shares of py-spy samples (raw collapsed stacks) spent under each kind of frame."""
    kinds = {"database": ("sqlalchemy", "aiosqlite", "asyncpg", "sqlite3"), "logging": ("structlog", "bridge/logs"),
             "json": ("json/",), "http client": ("aiohttp/client", "aiohttp/connector")}  # fmt: skip
    totals = dict.fromkeys(kinds, 0)
    samples = 0
    for line in path.read_text().splitlines() if path.exists() else []:
        stack, _, count = line.rpartition(" ")
        samples += int(count)
        for kind, needles in kinds.items():
            if any(needle in stack for needle in needles):
                totals[kind] += int(count)
    return {kind: totals[kind] / samples for kind in kinds} if samples else {}


def drain(
    trees: Trees, services: Services, code: str, database: str, runs: int, workdir: Path,
    replicas: int = 1, profile: bool = False, url: str | None = None, events: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """``url``: a database already holding the outbox (a clone of the suite's template); else a fresh one.
    ``events``: measure the rate over the first this many arrivals (the rest still pending), not the whole drain."""
    if url is None:
        url = asyncio.run(new_database(database, workdir))
        run_child(trees, code, "prefill", url=url, runs=runs)
    services.reset()
    config = bridge_config(workdir, services.receiver)
    env = trees.env(code, WARP_API_KEY=API_KEY, OZ_API_BASE_URL=f"{services.sim}/api/v1",
                    OZ_BRIDGE_DATABASE_URL=url, OZ_BRIDGE_LOG_LEVEL="info", OZ_BRIDGE_HOST="127.0.0.1")  # fmt: skip
    logs = [open(workdir / f"bridge-{code}-{database}-{n}.log", "w") for n in range(replicas)]  # noqa: SIM115
    bridges = [
        subprocess.Popen([sys.executable, "-m", "bridge.cli", "run", "--config", str(config)],
                         env={**env, "OZ_BRIDGE_PORT": "0"}, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
        for log in logs
    ]  # fmt: skip
    spy = None
    raw = Path(os.environ.get("OZ_BRIDGE_BENCH_PROFILES", workdir)) / f"profile-{code}-{database}-{runs}.txt"
    if profile:
        spy = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(bridges[0].pid), "--format", "raw",
             "--rate", "50", "--nonblocking", "--output", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        try:
            wait_for(services, min(events or 5 * runs, 5 * runs), within=3600, watch=bridges)
        except RuntimeError:
            raise RuntimeError(Path(logs[0].name).read_text()[-3000:]) from None
        stats = services.stats()
        rss = max(peak_rss_mib(b.pid) for b in bridges)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            spy.wait()
        for bridge in bridges:
            bridge.terminate()
            bridge.wait()
        for log in logs:
            log.close()
    result: dict[str, Any] = {"events_per_s": (stats["count"] - 1) / (stats["last"] - stats["first"]), "rss": rss}
    if profile:
        result["profile"] = profile_shares(raw)
    return result


def measure_ceiling(trees: Trees, services: Services, runs: int) -> float:
    services.reset()
    run_child(trees, "new", "ceiling", url=services.receiver + "/hook", runs=runs)
    stats = services.stats()
    return float((stats["count"] - 1) / (stats["last"] - stats["first"]))


def artifacts(trees: Trees, services: Services, code: str, count: int, workdir: Path) -> dict[str, float]:
    """One run observed once with ``count`` artifacts: what the bridge needs to store and send it."""
    import urllib.request

    def sim_call(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(services.sim + path, data=json.dumps(body).encode(), method=method,
                                         headers={"content-type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request) as response:
            return dict(json.loads(response.read()))

    urllib.request.urlopen(urllib.request.Request(services.sim + "/_sim/reset", method="POST")).read()
    database = workdir / f"artifacts-{code}-{count}.db"
    url = f"sqlite:///{database}"
    config = bridge_config(workdir, services.receiver)
    env = trees.env(code, WARP_API_KEY=API_KEY, OZ_API_BASE_URL=f"{services.sim}/api/v1",
                    OZ_BRIDGE_DATABASE_URL=url, OZ_BRIDGE_LOG_LEVEL="warning", OZ_BRIDGE_PORT="0")  # fmt: skip
    command = [sys.executable, "-m", "bridge.cli", "run", "--config", str(config)]
    first = subprocess.Popen(command, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(4)  # first boot fixes the start point
    first.terminate()
    first.wait()
    run = sim_call("POST", "/_sim/runs", {"state": "INPROGRESS"})
    sim_call("PATCH", f"/_sim/runs/{run['run_id']}", {"add_artifact": [{"artifact_type": "PULL_REQUEST"}] * count})
    services.reset()
    began = time.monotonic()
    bridge = subprocess.Popen(command, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    largest = 0
    try:
        deadline = began + 3600
        while services.stats()["count"] < count + 2:
            size = sum(p.stat().st_size for p in workdir.glob(database.name + "*"))
            largest = max(largest, size)
            if time.monotonic() > deadline or bridge.poll() is not None:
                raise RuntimeError(f"artifacts: {services.stats()['count']} of {count + 2} arrived")
            time.sleep(0.2)
        rss = peak_rss_mib(bridge.pid)
    finally:
        bridge.terminate()
        bridge.wait()
    return {"peak_rss_mib": rss, "peak_db_mib": largest / 2**20, "delivered_s": time.monotonic() - began}


def ratio(new: float, old: float) -> str:
    return f"{new / old:.2f}x" if old else "-"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--baseline", default=None, help="git ref of the code to compare with (default: where HEAD left main)"
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="claim,drain,replicas,artifacts,logs")
    parser.add_argument("--profile", action="store_true", help="py-spy the bridge during each drain")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    rounds = 1 if args.quick else args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        baseline = (
            args.baseline
            or subprocess.run(
                ["git", "-C", str(HERE), "merge-base", "HEAD", "main"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        print(f"baseline: {baseline}", file=sys.stderr)
        trees = Trees(baseline, workdir)
        services = Services(trees)
        services.start()
        try:
            report = run_all(trees, services, workdir, only, rounds, args.quick, args.profile)
        finally:
            services.stop()
            asyncio.run(drop_databases())
    print(json.dumps(report, indent=1))


def run_all(
    trees: Trees, services: Services, workdir: Path, only: set[str], rounds: int, quick: bool, profile: bool
) -> dict[str, Any]:
    report: dict[str, Any] = {}

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    if "logs" in only:
        say("logs")
        old, new = run_child(trees, "old", "logs"), run_child(trees, "new", "logs")
        report["logs"] = {"old": old, "new": new}
        say(f"  disabled debug: {old['disabled_debug_ns']:.0f} ns → {new['disabled_debug_ns']:.0f} ns "
            f"({ratio(new['disabled_debug_ns'], old['disabled_debug_ns'])})")  # fmt: skip
    if "claim" in only:
        for database in ("sqlite", "postgresql"):
            for backlog in (1_000, 5_000) if quick else (1_000, 5_000, 50_000):
                figures: dict[str, list[float]] = {"old": [], "new": []}
                for _ in range(rounds):
                    for code in ("old", "new"):
                        url = asyncio.run(new_database(database, workdir))
                        figures[code].append(
                            run_child(trees, code, "claim", url=url, backlog=backlog, cycles=30)["claim_ms"]
                        )
                old_ms, new_ms = statistics.median(figures["old"]), statistics.median(figures["new"])
                report[f"claim {database} {backlog}"] = {"old_ms": old_ms, "new_ms": new_ms}
                say(f"claim {database} {backlog:>6} pending: {old_ms:7.2f} ms → {new_ms:6.2f} ms "
                    f"({ratio(new_ms, old_ms)})")  # fmt: skip
    sizes = (200, 1_000) if quick else (1_000, 10_000)
    if "drain" in only:
        for runs in sizes:
            ceilings = [measure_ceiling(trees, services, runs) for _ in range(rounds)]
            report[f"ceiling {runs}"] = statistics.median(ceilings)
            say(f"ceiling {runs} runs: {report[f'ceiling {runs}']:.0f} events/s")
            for database in ("sqlite", "postgresql"):
                results: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
                for n in range(rounds if runs <= 1_000 else 1):
                    for code in ("old", "new"):
                        results[code].append(drain(trees, services, code, database, runs, workdir,
                                                   profile=profile and n == 0))  # fmt: skip
                row = {code: statistics.median(r["events_per_s"] for r in rs) for code, rs in results.items()}
                row["profiles"] = {code: rs[0].get("profile") for code, rs in results.items()}
                row["rss"] = {code: rs[0]["rss"] for code, rs in results.items()}
                report[f"drain {database} {runs}"] = row
                share = row["new"] / report[f"ceiling {runs}"]
                say(f"drain {database} {runs} runs: {row['old']:.0f} → {row['new']:.0f} events/s "
                    f"({ratio(row['new'], row['old'])}; {share:.0%} of the ceiling)")  # fmt: skip
    if "replicas" in only:
        runs = sizes[0] if quick else 2_000
        for count in (1, 2, 3):
            rates = [drain(trees, services, "new", "postgresql", runs, workdir, replicas=count)["events_per_s"]
                     for _ in range(rounds)]  # fmt: skip
            report[f"replicas {count}"] = statistics.median(rates)
            say(f"{count} replica(s), PostgreSQL, {runs} runs: {report[f'replicas {count}']:.0f} events/s")
    if "artifacts" in only:
        old_count, counts = (300, (300, 2_000)) if quick else (1_000, (1_000, 10_000))
        report["artifacts old"] = {old_count: artifacts(trees, services, "old", old_count, workdir)}
        say(f"artifacts old {old_count}: {report['artifacts old'][old_count]}")
        report["artifacts new"] = {}
        for count in counts:
            report["artifacts new"][count] = artifacts(trees, services, "new", count, workdir)
            say(f"artifacts new {count}: {report['artifacts new'][count]}")
    return report


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2], json.loads(sys.argv[3]))
    else:
        main()
