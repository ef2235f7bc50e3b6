"""SIGTERM while a poll waits on a slow Oz API: stopping is not an error.

The scheduler used to be shut down first, which cancels the poll job under
way; apscheduler logs that as 'Job … raised an exception' with a CancelledError
traceback at error level (about one stop in seven at the default pace, every
stop when the API is slow). Now the scheduler is paused, the poll finishes (or
is cut short quietly after the grace period), and only then shut down.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bridge.sim import Simulator
from tests.e2e.harness import BridgeProcess
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.faults.api_support import LIST_PATH, delivered, wait_for, webhook_config


def log_lines(bridge: BridgeProcess) -> list[dict[str, object]]:
    return [json.loads(line) for line in bridge.output if line.startswith("{")]


@pytest.mark.parametrize("grace", [5.0, 0.3], ids=["poll-finishes-within-grace", "poll-cut-short"])
async def test_sigterm_during_a_slow_poll_exits_0_without_an_error_line(
    tmp_path: Path, sim: Simulator, sim_url: str, receiver: WebhookReceiver, grace: float
) -> None:
    config = webhook_config(receiver)
    config["delivery"]["shutdown_grace"] = grace
    bridge = BridgeProcess(tmp_path, sim_url, config)
    await bridge.start()
    try:
        rid = sim.create_run()["run_id"]
        await wait_for(delivered(receiver, (rid, "run.queued")), "the bridge at work")
        for _ in range(3):
            sim.inject_fault(latency=1.5, count=1000, path=LIST_PATH)  # every poll now waits on the API
            await asyncio.sleep(0.5)  # a poll is under way
            assert await bridge.stop() == 0
            lines = log_lines(bridge)
            errors = [line for line in lines if line.get("level") in ("error", "critical")]
            assert errors == [], errors
            assert not any("Traceback" in line or "CancelledError" in line for line in bridge.output)
            assert "oz-bridge stopped" in [line["event"] for line in lines]
            sim.faults.clear()
            await bridge.start()
    finally:
        if bridge.proc is not None and bridge.proc.returncode is None:
            await bridge.kill()
