"""``oz-bridge demo``: the whole pipeline on this machine, with no credentials.

The built-in Oz simulator plays a scripted fleet of runs; the real bridge polls
it, diffs, routes and delivers to a console target on an embedded SQLite
database in a temporary folder.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bridge.app import Bridge
from bridge.logs import configure
from bridge.settings import Settings
from bridge.sim import DEMO_SCENARIO, Simulator, play, running_simulator

DEMO_KEY = "demo-key"
SETTLE_TIMEOUT = 30.0


def demo_settings(workdir: Path, oz_url: str) -> Settings:
    return Settings(
        database_url=f"sqlite:///{workdir / 'bridge.db'}",
        host="127.0.0.1",
        port=0,
        oz={"api_key": DEMO_KEY, "base_url": f"{oz_url}/api/v1"},
        poll={"interval": 0.1, "sweep": 1, "lookback": 2, "start": "now"},
        delivery={"check_interval": 0.05},
        targets={"console": {"type": "console"}},
        routes=[{"name": "everything", "events": ["*"], "to": ["console"]}],
    )


async def _settled(bridge: Bridge, scenario_end: datetime) -> bool:
    """Every change the scenario made was polled and every event delivered."""
    poller = bridge.poller
    polled_after = poller is not None and poller.last_success is not None and poller.last_success > scenario_end
    return polled_after and await bridge.pending_deliveries() == 0


def _forget_the_environment() -> None:
    """The demo runs on embedded defaults with no credentials, whatever this shell exports:
    a real SLACK_BOT_TOKEN or OZ_BRIDGE_* override must not reach it."""
    for name in list(os.environ):
        if name.startswith(("OZ_BRIDGE_", "SLACK_", "WARP_", "OZ_API_")):
            del os.environ[name]


async def run_demo(speed: float = 1.0) -> int:
    _forget_the_environment()
    configure("console", "warning")
    out = sys.stdout
    with tempfile.TemporaryDirectory(prefix="oz-bridge-demo-") as tmp:
        sim = Simulator(api_key=DEMO_KEY)
        async with running_simulator(sim) as oz_url:
            bridge = Bridge(demo_settings(Path(tmp), oz_url))
            await bridge.start()
            out.write(
                f"oz-bridge demo: Oz API simulator at {oz_url}, database in {tmp}\n"
                f"HTTP endpoints on http://127.0.0.1:{bridge.port} (/healthz, /readyz, /metrics)\n"
                "Every event the bridge detects is routed to a console target:\n\n"
            )
            started = time.monotonic()
            try:
                # Half speed by default so each scripted change is seen on its own poll.
                await play(sim, DEMO_SCENARIO, speed=speed / 2)
                scenario_end = datetime.now(UTC)
                deadline = time.monotonic() + SETTLE_TIMEOUT
                while not await _settled(bridge, scenario_end):
                    if time.monotonic() > deadline:
                        out.write("\ndemo: the bridge did not deliver everything in time\n")
                        return 1
                    await asyncio.sleep(0.05)
                delivered = int(bridge.metrics.deliveries.labels("console", "delivered")._value.get())
            finally:
                await bridge.stop()
            elapsed = time.monotonic() - started
            out.write(
                f"\ndemo: {len(sim.run_ids())} runs, {delivered} notifications delivered in {elapsed:.1f}s; "
                f"{len(sim.followups())} follow-up(s) reached the API. Done.\n"
            )
    return 0
