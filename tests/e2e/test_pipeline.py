"""The whole pipeline, end to end: simulator → oz-bridge run (subprocess) → signed webhooks."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from bridge.sim import Simulator
from tests.e2e.harness import BridgeProcess, wait_until
from tests.fakes.webhook_receiver import WebhookReceiver


def types_for(receiver: WebhookReceiver, run_id: str) -> list[str]:
    return [body["type"] for body in receiver.accepted if body["run"]["run_id"] == run_id]


async def step(receiver: WebhookReceiver, run_id: str, expected: list[str]) -> None:
    await wait_until(lambda: types_for(receiver, run_id) == expected, what=f"events {expected}")


async def test_run_lifecycle_reaches_the_webhook_in_order_and_signed(
    sim: Simulator, receiver: WebhookReceiver, bridge: BridgeProcess
) -> None:
    run = sim.create_run(title="Fix flaky test", state="QUEUED")
    rid = run["run_id"]
    await step(receiver, rid, ["run.created", "run.queued"])
    sim.update_run(rid, state="INPROGRESS")
    await step(receiver, rid, ["run.created", "run.queued", "run.started"])
    sim.update_run(rid, state="BLOCKED", status_message={"message": "Needs approval to push"})
    await step(receiver, rid, ["run.created", "run.queued", "run.started", "run.blocked"])
    sim.update_run(rid, state="INPROGRESS", status_message=None)
    sim.add_artifact(rid, "PULL_REQUEST", {"url": "https://github.com/acme/shop/pull/7", "branch": "fix"})
    sim.update_run(rid, state="FAILED", status_message={"message": "Tests failed", "error_code": "internal_error"})
    expected_tail = ["run.failed", "artifact.pull_request"]
    await wait_until(lambda: types_for(receiver, rid)[4:] == expected_tail, what="failure and PR")

    bodies = [b for b in receiver.accepted if b["run"]["run_id"] == rid]
    failed = bodies[4]
    assert failed["previous_state"] == "BLOCKED"  # INPROGRESS in between was never observed
    assert failed["run"]["status_message"]["message"] == "Tests failed"
    assert bodies[5]["artifact"]["data"]["url"] == "https://github.com/acme/shop/pull/7"
    assert all(r.signature_valid for r in receiver.requests)
    assert len({b["id"] for b in bodies}) == len(bodies)
    assert await bridge.stop() == 0


async def test_a_run_that_succeeds_between_two_polls(
    sim: Simulator,
    receiver: WebhookReceiver,
    bridges: Callable[..., BridgeProcess],
    webhook_config: Callable[..., dict[str, Any]],
) -> None:
    bridge = bridges(webhook_config(interval=1.0))
    await bridge.start()
    await wait_until(lambda: len(sim.requests("/api/v1/agent/runs")) >= 1, what="first poll")
    rid = sim.create_run(state="QUEUED")["run_id"]
    sim.update_run(rid, state="INPROGRESS")
    sim.update_run(rid, state="SUCCEEDED")
    await step(receiver, rid, ["run.created", "run.succeeded"])
    assert await bridge.stop() == 0


async def test_sigterm_drains_and_exits_zero(sim: Simulator, receiver: WebhookReceiver, bridge: BridgeProcess) -> None:
    assert await bridge.stop(signal.SIGTERM) == 0
    assert any('"oz-bridge stopped"' in line for line in bridge.output)
