"""Several replicas on one PostgreSQL database: one polls, all deliver, a follower takes over."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.sim import Simulator
from tests.e2e.harness import BridgeProcess, wait_until
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.pg import scratch_database


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with scratch_database() as url:
        yield url


async def leading(bridge: BridgeProcess) -> bool:
    return await bridge.metric("oz_bridge_is_leader") == 1


async def test_one_replica_polls_every_replica_serves_and_a_follower_takes_over(
    tmp_path: Path,
    sim: Simulator,
    sim_url: str,
    receiver: WebhookReceiver,
    webhook_config: Callable[..., dict[str, Any]],
    database_url: str,
) -> None:
    replicas = []
    for name in ("a", "b"):
        workdir = tmp_path / name
        workdir.mkdir()
        replicas.append(BridgeProcess(workdir, sim_url, webhook_config(), {"OZ_BRIDGE_DATABASE_URL": database_url}))
    try:
        for replica in replicas:
            await replica.start()
        first = [sim.create_run()["run_id"] for _ in range(10)]
        await wait_until(lambda: len(receiver.accepted) == 20, what="events through two replicas")
        roles = [await leading(r) for r in replicas]
        assert sorted(roles) == [False, True]
        for replica in replicas:
            assert (await replica.get("/readyz"))[0] == 200  # the follower reports the leader's polls
        leader = replicas[roles.index(True)]
        follower = replicas[roles.index(False)]
        assert await leader.stop() == 0  # hands the lease back
        await wait_until(lambda: leading(follower), within=10, what="the follower to take over")
        later = sim.create_run()["run_id"]
        await wait_until(lambda: len(receiver.accepted) == 22, what="events after the failover")
        ids = [body["id"] for body in receiver.accepted]
        assert len(set(ids)) == len(ids)
        assert {body["run"]["run_id"] for body in receiver.accepted} == {*first, later}
        assert await follower.stop() == 0
    finally:
        for replica in replicas:
            if replica.proc is not None and replica.proc.returncode is None:
                await replica.kill()
