"""``POST /slack/events``: the real ``oz-bridge run`` against a bare aiohttp handler, side by side.

    python -m benchmarks.inbound_latency [--rounds 3] [--seconds 8] [--rate 200] [--inflight 16]
                                         [--mix replies chatter]

Each round starts, for each target in turn, a fresh server: the bare baseline (aiohttp and
slack-sdk's ``SignatureVerifier``, answering 200) and the bridge (fresh SQLite database, its
roots posted to a fake Slack, the Oz simulator in its own process). A load generator in its own
process then sends signed requests at a fixed rate (latency measured from each request's
scheduled time, so a stall is not hidden), then closed loop with a fixed number in flight.
Mixes: ``replies`` (every request a genuine reply in one of the bridge's threads: stored, then
acted on by the worker while the measurement goes on), ``chatter`` (channel traffic the bridge
must drop: top-level messages, other people's threads, bots, edits). The table shows medians
over the rounds and the bridge's figures as ratios of the bare handler's.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

SECRET = "bench-signing-secret-0123456789abcdef"
API_KEY = "bench-key"
BOT_TOKEN = "xoxb-bench"
CHANNEL = "C0BENCH001"
THREADS = 20


# ---- the baseline server --------------------------------------------------------------------------


def serve_bare(port: int) -> None:
    from slack_sdk.signature import SignatureVerifier

    verifier = SignatureVerifier(SECRET)

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        ts = request.headers.get("X-Slack-Request-Timestamp", "")
        sig = request.headers.get("X-Slack-Signature", "")
        return web.Response(status=200 if verifier.is_valid(body=body, timestamp=ts, signature=sig) else 401)

    app = web.Application()
    app.router.add_post("/slack/events", handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=lambda *_: None)


# ---- the load generator ---------------------------------------------------------------------------


def _signed(body: bytes, ts: str) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def _bodies(spec: dict[str, Any]) -> list[tuple[bytes, dict[str, str]]]:
    now = str(int(time.time()))
    requests = []
    for n, event in enumerate(spec["events"]):
        body = json.dumps({"type": "event_callback", "event_id": f"EvB{spec['tag']}{n}", "event": event}).encode()
        requests.append((body, _signed(body, now)))
    return requests


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": ordered[-1] * 1000}


async def _open_loop(session: aiohttp.ClientSession, url: str, requests: list[Any], rate: float) -> dict[str, Any]:
    latencies: list[float] = []
    failures = 0
    start = time.perf_counter()

    async def one(scheduled: float, body: bytes, headers: dict[str, str]) -> None:
        nonlocal failures
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            failures += response.status != 200
        latencies.append(time.perf_counter() - scheduled)

    tasks = []
    for n, (body, headers) in enumerate(requests):
        scheduled = start + n / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        tasks.append(asyncio.create_task(one(scheduled, body, headers)))
    await asyncio.gather(*tasks)
    return {"requests": len(requests), "failures": failures, **_percentiles(latencies)}


async def _closed_loop(
    session: aiohttp.ClientSession, url: str, requests: list[Any], inflight: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    failures = 0
    pending = iter(requests)
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal failures
        for body, headers in pending:
            if time.perf_counter() > deadline:
                return
            sent = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                failures += response.status != 200
            latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    elapsed = time.perf_counter() - started
    return {"requests": len(latencies), "per_second": len(latencies) / elapsed, "failures": failures,
            **_percentiles(latencies)}  # fmt: skip


async def generate(spec: dict[str, Any]) -> dict[str, Any]:
    requests = _bodies(spec)
    split = int(spec["rate"] * spec["seconds"])
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        await _open_loop(session, spec["url"], requests[:20], 50)  # warm connections and caches
        fixed = await _open_loop(session, spec["url"], requests[20:split], spec["rate"])
        closed = await _closed_loop(session, spec["url"], requests[split:], spec["inflight"], spec["seconds"])
    return {"fixed_rate": fixed, "closed_loop": closed}


# ---- the orchestrator -----------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    url: str
    proc: asyncio.subprocess.Process


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_http(url: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(400):
            if proc.returncode is not None:
                raise RuntimeError(f"{url} exited early")
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} never answered")


async def start_bare() -> Target:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(sys.executable, __file__, "--serve-bare", str(port))
    await _wait_http(f"http://127.0.0.1:{port}/slack/events", proc)
    return Target("bare aiohttp + SignatureVerifier", f"http://127.0.0.1:{port}/slack/events", proc)


async def start_bridge(workdir: Path, sim_url: str, slack_api: str) -> Target:
    port = _free_port()
    config = {
        "poll": {"interval": 1, "sweep": 5, "lookback": 5},
        "targets": {"alerts": {"type": "slack", "channel": CHANNEL}},
        "routes": [{"name": "all", "events": ["*"], "to": ["alerts"]}],
    }
    (workdir / "bridge.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OZ_", "SLACK_", "WARP_"))}
    env.update(WARP_API_KEY=API_KEY, OZ_API_BASE_URL=f"{sim_url}/api/v1", SLACK_BOT_TOKEN=BOT_TOKEN,
               SLACK_API_URL=slack_api, SLACK_SIGNING_SECRET=SECRET, OZ_BRIDGE_HOST="127.0.0.1",
               OZ_BRIDGE_PORT=str(port), OZ_BRIDGE_DATABASE_URL=f"sqlite:///{workdir / 'bridge.db'}",
               OZ_BRIDGE_LOG_LEVEL="warning", OZ_BRIDGE_LOG_FORMAT="json")  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge.cli", "run", "--config", str(workdir / "bridge.yaml"),
        env=env, cwd=workdir, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await _wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return Target("oz-bridge run", f"http://127.0.0.1:{port}/slack/events", proc)


async def start_simulator() -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge.sim", "--port", "0", "--api-key", API_KEY,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    while line := (await proc.stdout.readline()).decode():
        if line.startswith("OZ_SIM_URL="):
            return proc, line.split("=", 1)[1].strip()
    raise RuntimeError("simulator did not start")


async def bridge_threads(sim_url: str, slack: Any, count: int) -> list[str]:
    """Runs in the simulator, and the roots the bridge posts for them: the threads replies go to."""
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            async with session.post(f"{sim_url}/_sim/runs", json={"state": "INPROGRESS"}) as response:
                response.raise_for_status()
    for _ in range(600):
        roots = [m["ts"] for m in slack.messages(CHANNEL) if m.get("bot_id") and m.get("thread_ts", m["ts"]) == m["ts"]]
        if len(roots) >= count:
            return roots
        await asyncio.sleep(0.05)
    raise RuntimeError("the bridge did not post its roots")


def events_for(mix: str, count: int, roots: list[str]) -> list[dict[str, Any]]:
    events = []
    for n in range(count):
        base = {"type": "message", "channel": CHANNEL, "user": "UHUMAN", "text": f"message {n}"}
        ts = f"{1_700_000_000 + n}.000100"
        if mix == "replies":
            # The fake Slack does not hold these messages, so the worker's reactions fail (and are logged).
            events.append({**base, "ts": ts, "thread_ts": roots[n % len(roots)] if roots else "1.000001"})
            continue
        shape = n % 10
        if shape < 4:
            events.append({**base, "ts": ts})  # top-level chatter
        elif shape < 7:
            events.append({**base, "ts": ts, "thread_ts": f"{1_600_000_000 + n % 300}.000200"})  # others' threads
        elif shape < 9:
            events.append({**base, "ts": ts, "bot_id": "BOTHER", "subtype": "bot_message"})
        else:
            events.append({**base, "ts": ts, "subtype": "message_changed"})
    return events


@dataclass(frozen=True)
class Load:
    """What the load generator sends: ``rate`` per second for ``seconds``, then closed loop ``inflight``."""

    rate: float = 200.0
    seconds: float = 8.0
    inflight: int = 16

    @property
    def requests(self) -> int:
        return 20 + int(self.rate * self.seconds) + int(self.seconds * 6000)  # enough for any closed loop here


async def measure(target: Target, events: list[dict[str, Any]], load: Load, tag: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        spec_path, out_path = Path(scratch) / "spec.json", Path(scratch) / "out.json"
        spec = {"url": target.url, "events": events, "rate": load.rate, "seconds": load.seconds,
                "inflight": load.inflight, "tag": tag}  # fmt: skip
        spec_path.write_text(json.dumps(spec))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--generate", str(spec_path), str(out_path)
        )
        if await proc.wait() != 0:
            raise RuntimeError("the load generator failed")
        result: dict[str, Any] = json.loads(out_path.read_text())
    return result


async def stop(target: Target) -> None:
    if target.proc.returncode is None:
        target.proc.terminate()
        await asyncio.wait_for(target.proc.wait(), 30)


async def one_round(which: str, mix: str, sim_url: str, load: Load, tag: str) -> dict[str, Any]:
    """One target (``bare`` or ``bridge``) on a fresh server, loaded once: the generator's figures."""
    from tests.fakes.slack_api import FakeSlack

    async with FakeSlack(token=BOT_TOKEN) as slack:
        with tempfile.TemporaryDirectory() as workdir:
            if which == "bare":
                target, roots = await start_bare(), []
            else:
                target = await start_bridge(Path(workdir), sim_url, slack.api_url)
                roots = await bridge_threads(sim_url, slack, THREADS)
            events = events_for(mix, load.requests, roots)
            try:
                return await measure(target, events, load, tag)
            finally:
                await stop(target)


async def orchestrate(args: argparse.Namespace) -> None:
    sim_proc, sim_url = await start_simulator()
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    load = Load(rate=args.rate, seconds=args.seconds, inflight=args.inflight)
    try:
        for round_no in range(args.rounds):
            for mix in args.mix:
                for which in ("bare", "bridge"):
                    figures = await one_round(which, mix, sim_url, load, f"{round_no}{which}{mix}")
                    results.setdefault((mix, which), []).append(figures)
                    print(f"round {round_no + 1} {mix:8} {which:6} {json.dumps(figures)}", file=sys.stderr)
    finally:
        sim_proc.terminate()
        await sim_proc.wait()
    print_table(results, args)


def _median(runs: list[dict[str, Any]], phase: str, key: str) -> float:
    return float(statistics.median(run[phase][key] for run in runs))


def print_table(results: dict[tuple[str, str], list[dict[str, Any]]], args: argparse.Namespace) -> None:
    print(f"\nPOST /slack/events, medians of {args.rounds} interleaved rounds "
          f"(fixed rate {args.rate:g}/s for {args.seconds:g} s; closed loop {args.inflight} in flight)\n")  # fmt: skip
    print("| mix | measure | bare aiohttp + SignatureVerifier | oz-bridge run | ratio |")
    print("|---|---|---|---|---|")
    for mix in args.mix:
        bare, bridge = results[(mix, "bare")], results[(mix, "bridge")]
        for label, phase, key in (
            ("p50 at fixed rate (ms)", "fixed_rate", "p50_ms"),
            ("p99 at fixed rate (ms)", "fixed_rate", "p99_ms"),
            ("max at fixed rate (ms)", "fixed_rate", "max_ms"),
            ("closed loop (requests/s)", "closed_loop", "per_second"),
            ("closed loop p99 (ms)", "closed_loop", "p99_ms"),
        ):
            base, ours = _median(bare, phase, key), _median(bridge, phase, key)
            print(f"| {mix} | {label} | {base:.1f} | {ours:.1f} | {ours / base:.2f}x |")
        failures = sum(run[p]["failures"] for run in bridge for p in ("fixed_rate", "closed_loop"))
        print(f"| {mix} | non-200 answers from the bridge | | {failures} | |")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve-bare":
        serve_bare(int(sys.argv[2]))
        return
    if len(sys.argv) > 3 and sys.argv[1] == "--generate":
        spec = json.loads(Path(sys.argv[2]).read_text())
        Path(sys.argv[3]).write_text(json.dumps(asyncio.run(generate(spec))))
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.inbound_latency", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--mix", nargs="+", choices=["replies", "chatter"], default=["replies", "chatter"])
    asyncio.run(orchestrate(parser.parse_args()))


if __name__ == "__main__":
    main()
