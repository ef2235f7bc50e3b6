"""A webhook target that goes away and comes back, and one that refuses an event for good.

Down means both ways a real target is down: answering 503, then not answering at
all (connection refused). Everything detected meanwhile arrives once it is back,
in order per run; a 400 is dead-lettered at once, listed by ``oz-bridge dlq list``
and replayed by ``oz-bridge dlq retry``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bridge.sim import Simulator
from tests.e2e import conftest as e2e
from tests.e2e.harness import BridgeProcess, wait_until
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.faults.delivery_checks import missing, out_of_order

sim_api_key, receiver, bridges, webhook_config = e2e.sim_api_key, e2e.receiver, e2e.bridges, e2e.webhook_config


async def refuse_connections(hook: WebhookReceiver, seconds: float) -> None:
    """Take the receiver off the network for a while, then back on the same port."""
    assert hook._runner is not None
    port = int(hook.url.rsplit(":", 1)[1].split("/", 1)[0])
    await hook._runner.cleanup()
    await asyncio.sleep(seconds)
    app = web.Application()
    app.router.add_post("/hook", hook._handle)
    hook._runner = web.AppRunner(app, access_log=None)
    await hook._runner.setup()
    await web.TCPSite(hook._runner, "127.0.0.1", port).start()


async def test_a_target_down_for_a_while_gets_everything_in_order_once_back(
    sim: Simulator,
    receiver: WebhookReceiver,
    bridges: Callable[..., BridgeProcess],
    webhook_config: Callable[..., dict[str, Any]],
    soak: bool,
) -> None:
    outage = 180.0 if soak else 24.0
    config = webhook_config()
    config["delivery"]["max_backoff"] = 3  # so the test sees recovery within seconds of the end
    bridge = bridges(config)
    await bridge.start()
    runs: list[str] = []

    async def keep_changing_runs() -> None:
        while True:
            rid = sim.create_run(state="INPROGRESS")["run_id"]
            runs.append(rid)
            sim.add_artifact(rid, "PULL_REQUEST")
            await asyncio.sleep(0.2)

    changes = asyncio.create_task(keep_changing_runs())
    try:
        receiver.script = [503] * 1_000_000
        await asyncio.sleep(outage / 2)
        # Still answering 503 until the port closes: a send arriving while it closes is refused too.
        await refuse_connections(receiver, outage / 2)
        assert len(receiver.accepted) == 0
        receiver.script = []
        await asyncio.sleep(1)
    finally:
        changes.cancel()
    await wait_until(
        lambda: not missing(sim, runs, receiver.accepted, ("run.created", "run.started")),
        within=60,
        what=f"the {len(runs)} runs detected during the outage",
    )
    assert out_of_order(receiver.accepted) == []
    assert await bridge.metric('oz_bridge_deliveries_total{outcome="dead",target="audit"}') == 0
    assert await bridge.metric('oz_bridge_deliveries_total{outcome="retry",target="audit"}') > 0
    assert await bridge.stop() == 0


def oz_bridge(bridge: BridgeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**bridge.env(), "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args, "--config", str(bridge.workdir / "bridge.yaml")],
        cwd=bridge.workdir, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def test_a_rejected_event_is_dead_lettered_listed_and_replayed(
    sim: Simulator,
    receiver: WebhookReceiver,
    bridges: Callable[..., BridgeProcess],
    webhook_config: Callable[..., dict[str, Any]],
) -> None:
    receiver.script = [400]
    bridge = bridges(webhook_config())
    await bridge.start()
    rid = sim.create_run()["run_id"]
    await wait_until(lambda: len(receiver.requests) == 2, what="the rejection and the next event")
    rejected = receiver.requests[0].body
    assert [b["type"] for b in receiver.accepted] == ["run.queued"]  # the queue moved on
    await wait_until(lambda: bridge_metric_at_least(bridge, "oz_bridge_dead_letters", 1), what="the dead letter")
    listing = oz_bridge(bridge, "dlq", "list")
    assert listing.returncode == 0
    [line] = [line for line in listing.stdout.splitlines() if rid in line]
    assert "HTTP 400" in line and rejected["type"] in line
    dead_id = line.split()[0]
    replay = oz_bridge(bridge, "dlq", "retry", dead_id)
    assert replay.returncode == 0 and "requeued 1" in replay.stdout
    await wait_until(lambda: len(receiver.accepted) == 2, what="the replayed event")
    assert receiver.accepted[1] == rejected  # the same event, the same body
    assert "no dead letters" in oz_bridge(bridge, "dlq", "list").stdout
    assert await bridge.stop() == 0


async def bridge_metric_at_least(bridge: BridgeProcess, name: str, value: float) -> bool:
    return await bridge.metric(name) >= value
