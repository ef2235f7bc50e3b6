"""Shared pieces of the Oz-API fault tests: the real ``oz-bridge run``, the simulator, a verifying receiver."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bridge.sim import Simulator
from tests.e2e.harness import BridgeProcess, fast_config, wait_until
from tests.fakes.webhook_receiver import WebhookReceiver

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
LIST_PATH = "/api/v1/agent/runs"


def webhook_config(
    receiver: WebhookReceiver, routes: list[dict[str, Any]] | None = None, **poll: Any
) -> dict[str, Any]:
    targets = {"audit": {"type": "webhook", "url": receiver.url, "secret": WEBHOOK_SECRET, "timeout": 5}}
    return fast_config(targets, routes or [{"name": "all", "events": ["*"], "to": ["audit"]}], **poll)


@asynccontextmanager
async def running_bridge(workdir: Path, sim_url: str, config: dict[str, Any]) -> AsyncIterator[BridgeProcess]:
    bridge = BridgeProcess(workdir, sim_url, config)
    await bridge.start()
    try:
        yield bridge
    finally:
        if bridge.proc is not None and bridge.proc.returncode is None:
            await bridge.kill()


def pairs(receiver: WebhookReceiver) -> list[tuple[str, str]]:
    return [(body["run"]["run_id"], body["type"]) for body in receiver.accepted]


def delivered(receiver: WebhookReceiver, *wanted: tuple[str, str]) -> Callable[[], bool]:
    return lambda: set(wanted) <= set(pairs(receiver))


async def readyz(bridge: BridgeProcess) -> tuple[int, dict[str, Any]]:
    status, body = await bridge.get("/readyz")
    return status, json.loads(body)


async def ready(bridge: BridgeProcess) -> bool:
    return (await readyz(bridge))[0] == 200


async def left_out(bridge: BridgeProcess, reason: str) -> float:
    return await bridge.metric(f'oz_bridge_malformed_runs_total{{reason="{reason}"}}')


async def stopped_cleanly(bridge: BridgeProcess) -> list[str]:
    """Stop the bridge; the log lines at error level (there should be none), and no secrets or tracebacks."""
    assert await bridge.stop() == 0
    lines = [json.loads(line) for line in bridge.output if line.startswith("{")]
    assert not any("Traceback" in line for line in bridge.output)
    assert not any(WEBHOOK_SECRET in line for line in bridge.output)
    return [line["event"] for line in lines if line.get("level") in ("error", "critical")]


async def wait_for(check: Callable[[], Any], what: str, within: float = 15) -> None:
    await wait_until(check, within=within, what=what)


def sim_requests(sim: Simulator) -> int:
    return len([r for r in sim.requests(LIST_PATH) if r.path == LIST_PATH])
