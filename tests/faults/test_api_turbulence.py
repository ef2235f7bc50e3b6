"""A burst of changes while the Oz API misbehaves in every ordinary way at once.

500s, 429s with Retry-After, bodies cut off mid-way, unparsable bodies and
latency spikes land at random (seeded) among the poller's requests while runs
are created and walked through their states. Whatever the API did, every run's
last state is told, each run's events arrive in the order they happened, no
change is told twice under different ids, and the bridge's snapshots end equal
to the API's truth: the cursor never passed a change it had not processed.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sqlite3
from pathlib import Path

import pytest

from bridge.sim import Fault, Simulator
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.faults.api_support import (
    LIST_PATH,
    running_bridge,
    stopped_cleanly,
    wait_for,
    webhook_config,
)

WALK = ["INPROGRESS", "BLOCKED", "INPROGRESS", "SUCCEEDED"]
STATE_EVENTS = {
    "QUEUED": "run.queued",
    "INPROGRESS": "run.started",
    "BLOCKED": "run.blocked",
    "SUCCEEDED": "run.succeeded",
}


def turbulence(sim: Simulator, scale: int) -> list[Fault]:
    """Faults hitting a share of the listing requests each, until each has struck ``count`` times."""
    return [
        sim.inject_fault(500, count=4 * scale, rate=0.12, path=LIST_PATH),
        sim.inject_fault(503, count=2 * scale, rate=0.06, path=LIST_PATH),
        sim.inject_fault(429, retry_after=0.4, count=2 * scale, rate=0.1, path=LIST_PATH),
        sim.inject_fault(malformed="cut", count=2 * scale, rate=0.1, path=LIST_PATH),
        sim.inject_fault(malformed="truncated", count=scale, rate=0.06, path=LIST_PATH),
        sim.inject_fault(malformed="non_json", count=scale, rate=0.06, path=LIST_PATH),
        sim.inject_fault(latency=1.2, count=2 * scale, rate=0.1, path=LIST_PATH),
    ]


async def burst(sim: Simulator, runs: int, seed: int, faults: list[Fault]) -> dict[str, list[str]]:
    """Create ``runs`` runs and walk each through its states in a shuffled order, then keep a trickle of
    new runs going until every fault has struck at least once; returns each run's history."""
    rng = random.Random(seed)
    history: dict[str, list[str]] = {}
    for n in range(runs):
        history[sim.create_run()["run_id"]] = ["QUEUED"]
        if n % 25 == 0:
            await asyncio.sleep(0.02)
    steps = [(rid, state) for rid in history for state in WALK]
    rng.shuffle(steps)
    progress = {rid: 0 for rid in history}
    for n, (rid, _) in enumerate(steps):
        state = WALK[progress[rid]]  # each run's own order is kept, runs interleave at random
        progress[rid] += 1
        sim.update_run(rid, state=state)
        history[rid].append(state)
        if n % 40 == 0:
            await asyncio.sleep(rng.choice([0.0, 0.05, 0.3]))
    initial = {fault.fault_id: fault.count for fault in faults}
    deadline = asyncio.get_running_loop().time() + 60
    while any(f.count == initial[f.fault_id] for f in faults) and asyncio.get_running_loop().time() < deadline:
        history[sim.create_run(state="SUCCEEDED")["run_id"]] = ["SUCCEEDED"]
        await asyncio.sleep(0.1)
    assert all(f.count < initial[f.fault_id] for f in faults), "every kind of fault struck during the burst"
    return history


def assert_told_in_order(receiver: WebhookReceiver, history: dict[str, list[str]]) -> None:
    per_run: dict[str, list[dict[str, object]]] = {rid: [] for rid in history}
    for body in receiver.accepted:
        per_run[body["run"]["run_id"]].append(body)
    ids: dict[str, tuple[object, object]] = {}
    for rid, bodies in per_run.items():
        kinds = [b["type"] for b in bodies]
        assert kinds[0] == "run.created", rid
        states = [b for b in bodies if b["type"] != "run.created"]
        told = [b["run"]["state"] for b in states]  # type: ignore[index]
        assert told[-1] == history[rid][-1], f"{rid}: last state told {told[-1]}, truth {history[rid][-1]}"
        assert _is_subsequence(told, history[rid]), f"{rid}: told {told}, happened {history[rid]}"
        for before, after in itertools.pairwise(states):
            assert after["previous_state"] == before["run"]["state"]  # type: ignore[index]
        for body in bodies:
            key = (body["type"], body["run"]["updated_at"])  # type: ignore[index]
            assert ids.setdefault(str(body["id"]), key) == key  # one id, one change


def _is_subsequence(told: list[str], happened: list[str]) -> bool:
    remaining = iter(happened)
    return all(any(state == seen for seen in remaining) for state in told)


def stored_states(workdir: Path) -> dict[str, str]:
    with sqlite3.connect(workdir / "bridge.db") as db:
        return dict(db.execute("SELECT run_id, state FROM runs").fetchall())


async def play(tmp_path: Path, sim: Simulator, sim_url: str, receiver: WebhookReceiver, runs: int, scale: int) -> None:
    config = webhook_config(receiver, page_size=25)
    async with running_bridge(tmp_path, sim_url, config) as bridge:
        history = await burst(sim, runs, runs, turbulence(sim, scale))

        def everything_told() -> bool:
            last = {b["run"]["run_id"]: b["run"]["state"] for b in receiver.accepted if b["type"] != "run.created"}
            return all(last.get(rid) == states[-1] for rid, states in history.items())

        await wait_for(everything_told, "the last state of every run", within=60 + runs / 20)
        for reason in ("api_error", "rate_limited", "unreadable_page"):
            assert await bridge.metric(f'oz_bridge_poll_stalls_total{{reason="{reason}"}}') >= 1, reason
        assert_told_in_order(receiver, history)
        assert all(r.signature_valid for r in receiver.requests)
        assert await stopped_cleanly(bridge) == []
    truth = {rid: states[-1] for rid, states in history.items()}
    assert stored_states(tmp_path) == truth


async def test_a_burst_through_500s_429s_cut_bodies_and_latency_loses_nothing(
    tmp_path: Path, sim: Simulator, sim_url: str, receiver: WebhookReceiver
) -> None:
    await play(tmp_path, sim, sim_url, receiver, runs=150, scale=2)


@pytest.mark.timeout(1800)
async def test_a_long_burst_through_turbulence_loses_nothing(
    tmp_path: Path, sim: Simulator, sim_url: str, receiver: WebhookReceiver, soak: bool
) -> None:
    if not soak:
        pytest.skip("long variant: run with --soak")
    await play(tmp_path, sim, sim_url, receiver, runs=3000, scale=20)
