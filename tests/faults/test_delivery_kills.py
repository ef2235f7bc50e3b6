"""SIGKILL the real bridge at random moments during a burst, restarting it each time.

Nothing is lost, each run's events arrive in order, and the resends a kill causes
are bounded by what can be in flight at that moment (concurrency x targets): a
worker claims a queue's next row only in the transaction that records the last.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable
from typing import Any

from bridge.sim import Simulator
from tests.e2e import conftest as e2e
from tests.e2e.harness import BridgeProcess, wait_until
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.faults.delivery_checks import duplicates, missing, out_of_order

# The end-to-end fixtures: the simulator on the harness's key, the verifying receiver, bridge processes.
sim_api_key, receiver, bridges, webhook_config = e2e.sim_api_key, e2e.receiver, e2e.bridges, e2e.webhook_config

CONCURRENCY = 16
TARGETS = 1


async def test_sigkills_during_a_burst_lose_nothing_and_keep_order(
    sim: Simulator,
    receiver: WebhookReceiver,
    bridges: Callable[..., BridgeProcess],
    webhook_config: Callable[..., dict[str, Any]],
    soak: bool,
) -> None:
    kills, runs_count = (40, 2_000) if soak else (5, 600)
    seed = int(os.environ.get("OZ_BRIDGE_FAULT_SEED", random.randrange(1 << 30)))
    chance = random.Random(seed)
    print(f"seed {seed}: {kills} kills, {runs_count} runs")
    receiver.delay = 0.002
    config = webhook_config()
    config["delivery"]["concurrency"] = CONCURRENCY
    bridge = bridges(config)
    await bridge.start()
    runs = [sim.create_run(state="INPROGRESS")["run_id"] for _ in range(runs_count)]
    for rid in runs:  # four events each: created, started and two pull requests
        sim.add_artifact(rid, "PULL_REQUEST")
        sim.add_artifact(rid, "PULL_REQUEST")
    total = 4 * runs_count
    for kill in range(kills):
        await asyncio.sleep(chance.uniform(0.2, 1.5))
        await bridge.kill()
        print(f"kill {kill + 1}: {len(receiver.accepted)} of {total} accepted")
        await bridge.start()
    try:
        await wait_until(
            lambda: not missing(sim, runs, receiver.accepted, ("run.created", "run.started")),
            within=180,
            what="every event after the last restart",
        )
    except AssertionError:
        lost = missing(sim, runs, receiver.accepted, ("run.created", "run.started"))
        raise AssertionError(f"seed {seed}: {len(lost)} lost, e.g. {lost[:5]}") from None
    assert out_of_order(receiver.accepted) == [], f"seed {seed}"
    assert all(r.signature_valid for r in receiver.requests)
    resent = duplicates(receiver.accepted)
    print(f"seed {seed}: {resent} resends over {kills} kills (bound {kills * CONCURRENCY * TARGETS})")
    assert resent <= kills * CONCURRENCY * TARGETS
    assert await bridge.stop() == 0
