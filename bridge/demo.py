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
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.app import Bridge
from bridge.logs import configure
from bridge.settings import Settings
from bridge.sim import DEMO_SCENARIO, SimClock, Simulator, play, running_simulator
from bridge.sim.scenario import scenario_duration

DEMO_KEY = "demo-key"
SETTLE_TIMEOUT = 30.0
DIGEST_AT = "09:00"  # the demo's daily digest, on a clock that reaches it just after the scenario
DIGEST_LEAD = 1.0  # seconds between the scenario's last change and the digest's time


def demo_settings(workdir: Path, oz_url: str, speed: float = 1.0) -> Settings:
    hour, minute = DIGEST_AT.split(":")
    return Settings(
        database_url=f"sqlite:///{workdir / 'bridge.db'}",
        host="127.0.0.1",
        port=0,
        oz={"api_key": DEMO_KEY, "base_url": f"{oz_url}/api/v1"},
        poll={"interval": 0.1, "sweep": 1, "lookback": 2, "start": "now"},
        delivery={"check_interval": 0.05},
        targets={"console": {"type": "console"}},
        routes=[{"name": "everything", "events": ["*"], "to": ["console"]}],
        # Short enough that the scenario's blocked run is reminded while it waits.
        reminders={"blocked_every": 0.5 / speed},
        budgets={"run_usd": 1.0},
        digests=[{"name": "daily", "cron": f"{int(minute)} {int(hour)} * * *", "window": "24h", "to": ["console"]}],
    )


def demo_clock(speed: float) -> SimClock:
    """A clock for the simulator and the bridge that strikes the digest's time just after the scenario ends."""
    hour, minute = (int(part) for part in DIGEST_AT.split(":"))
    digest_at = datetime.now(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
    clock = SimClock()
    clock.set(digest_at - timedelta(seconds=scenario_duration(DEMO_SCENARIO, speed / 2) + DIGEST_LEAD))
    return clock


async def _settled(bridge: Bridge, scenario_end: datetime) -> bool:
    """Every change the scenario made was polled, the digest was made, and every event delivered."""
    poller = bridge.poller
    polled_after = poller is not None and poller.last_success is not None and poller.last_success > scenario_end
    digested = bridge.metrics.events.labels("digest")._value.get() > 0
    return polled_after and digested and await bridge.pending_deliveries() == 0


def forget_the_environment() -> None:
    """The demo runs on embedded defaults with no credentials, whatever this shell exports:
    a real SLACK_BOT_TOKEN or OZ_BRIDGE_* override must not reach it."""
    for name in list(os.environ):
        if name.startswith(("OZ_BRIDGE_", "SLACK_", "WARP_", "OZ_API_")):
            del os.environ[name]


async def run_demo(speed: float = 1.0) -> int:
    forget_the_environment()
    configure("console", "warning")
    out = sys.stdout
    with tempfile.TemporaryDirectory(prefix="oz-bridge-demo-") as tmp:
        clock = demo_clock(speed)
        sim = Simulator(api_key=DEMO_KEY, clock=clock)
        async with running_simulator(sim) as oz_url:
            settings = demo_settings(Path(tmp), oz_url, speed)
            bridge = Bridge(settings, clock=clock.now)
            await bridge.start()
            out.write(
                f"oz-bridge demo: Oz API simulator at {oz_url}, database in {tmp}\n"
                f"HTTP endpoints on http://127.0.0.1:{bridge.port} (/healthz, /readyz, /metrics)\n"
                f"Reminders every {settings.reminders.blocked_every:g}s while a run is blocked, a budget of "
                f"${settings.budgets.run_usd:g} per run, and a daily digest at {DIGEST_AT} UTC (the demo's clock "
                "reaches it just after the scenario).\n"
                "Every event the bridge detects is routed to a console target:\n\n"
            )
            started = time.monotonic()
            try:
                # Half speed by default so each scripted change is seen on its own poll.
                await play(sim, DEMO_SCENARIO, speed=speed / 2)
                scenario_end = clock.now()
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
