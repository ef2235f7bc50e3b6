"""The poller lease under three replicas on PostgreSQL: SIGKILL the leader, and another replica polls.

The lease lasts three poll intervals and is renewed on every tick, so a leader that dies without
handing it back is replaced once the lease has run out: a follower that finds it running out before
its next tick looks again at that moment, between 2 and 3 intervals after the kill. The test prints
what it measured (takeover time against the lease TTL, and how long the survivors' /readyz said 503
meanwhile); it asserts only that a survivor takes over, alone, and that runs created after the kill
are delivered. The short variant polls every 0.5 s; ``--soak`` measures the default 15 s interval
over three kills.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.sim import Simulator
from tests.e2e.harness import API_KEY, BridgeProcess, fast_config, wait_until
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.pg import scratch_database

REPLICAS = 3


@pytest.fixture
def sim_api_key() -> str:
    return API_KEY


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as hook:
        yield hook


async def leader_of(replicas: list[BridgeProcess]) -> BridgeProcess | None:
    leading = [r for r in replicas if await r.metric("oz_bridge_is_leader") == 1]
    return leading[0] if len(leading) == 1 else None


@dataclass
class Takeover:
    seconds: float  # from the leader's SIGKILL to a survivor's first poll
    unready: list[float]  # when a survivor's /readyz said 503, seconds after the kill


async def kill_the_leader(running: list[BridgeProcess], ttl: float, interval: float) -> Takeover:
    await wait_until(lambda: leader_of(running), within=3 * ttl, what="one leader")
    leader = await leader_of(running)
    assert leader is not None
    survivors = [r for r in running if r is not leader]
    polls_before = [await r.metric("oz_bridge_polls_total") for r in survivors]
    await leader.kill()
    killed_at = time.monotonic()
    unready: list[float] = []

    async def a_survivor_polled() -> bool:
        for survivor, before in zip(survivors, polls_before, strict=True):
            if (await survivor.get("/readyz"))[0] != 200:
                unready.append(time.monotonic() - killed_at)
            if await survivor.metric("oz_bridge_polls_total") > before:
                return True
        return False

    await wait_until(a_survivor_polled, within=ttl + 3 * interval + 10, what="a survivor to poll")
    return Takeover(time.monotonic() - killed_at, unready)


@pytest.mark.timeout(900)
async def test_a_killed_leaders_lease_is_taken_over_by_one_survivor(
    tmp_path: Path, sim: Simulator, sim_url: str, receiver: WebhookReceiver, soak: bool
) -> None:
    interval, kills = (15.0, 3) if soak else (0.5, 1)
    ttl = 3 * interval
    config = fast_config(
        {"audit": {"type": "webhook", "url": receiver.url, "timeout": 2}},
        [{"name": "all", "events": ["*"], "to": ["audit"]}],
        interval=interval,
        sweep=max(1.0, interval),
    )
    takeovers: list[Takeover] = []
    async with scratch_database() as url:
        replicas = []
        for n in range(REPLICAS + kills - 1):  # a fresh replica replaces each killed one
            (tmp_path / f"r{n}").mkdir()
            replicas.append(BridgeProcess(tmp_path / f"r{n}", sim_url, config, {"OZ_BRIDGE_DATABASE_URL": url}))
        running, spare = replicas[:REPLICAS], replicas[REPLICAS:]
        try:
            for replica in running:
                await replica.start()
            for _ in range(kills):
                takeovers.append(await kill_the_leader(running, ttl, interval))
                running = [r for r in running if r.proc is not None and r.proc.returncode is None]
                assert await leader_of(running) is not None, "exactly one survivor holds the lease"
                run_id = sim.create_run()["run_id"]
                await wait_until(
                    lambda r=run_id: any(b["run"]["run_id"] == r for b in receiver.accepted),
                    within=3 * ttl + 10,
                    what="a run created after the kill, delivered",
                )
                if spare:
                    await spare[0].start()
                    running.append(spare.pop(0))
        finally:
            for replica in replicas:
                if replica.proc is not None and replica.proc.returncode is None:
                    await replica.kill()
    for takeover in takeovers:
        unready = takeover.unready
        window = f"from {min(unready):.2f}s to {max(unready):.2f}s after it" if unready else "never"
        print(
            f"\npoll interval {interval:g}s, lease TTL {ttl:g}s: a survivor polled {takeover.seconds:.2f}s after"
            f" the leader's SIGKILL ({takeover.seconds / ttl:.2f} x TTL); a survivor's /readyz said 503 {window}"
        )
