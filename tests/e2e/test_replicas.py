"""Several replicas on one PostgreSQL database: one polls, all deliver and share the work, a follower takes
over the poller, and the survivors take over a killed replica's deliveries within seconds."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bridge.sim import Simulator
from tests.e2e.conftest import WEBHOOK_SECRET
from tests.e2e.harness import BridgeProcess, fast_config, wait_until
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.pg import scratch_database


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with scratch_database() as url:
        yield url


async def leading(bridge: BridgeProcess) -> bool:
    return await bridge.metric("oz_bridge_is_leader") == 1


async def ready(bridge: BridgeProcess) -> bool:
    return (await bridge.get("/readyz"))[0] == 200


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


def replica_config(receiver: WebhookReceiver, **delivery: Any) -> dict[str, Any]:
    targets = {"audit": {"type": "webhook", "url": receiver.url, "secret": WEBHOOK_SECRET, "timeout": 5}}
    config = fast_config(targets, [{"name": "all", "events": ["*"], "to": ["audit"]}])
    config["delivery"].update(delivery)
    return config


async def start_replicas(
    count: int, tmp_path: Path, sim_url: str, config: dict[str, Any], database_url: str
) -> list[BridgeProcess]:
    replicas = []
    for n in range(count):
        workdir = tmp_path / f"replica-{n}"
        workdir.mkdir()
        replica = BridgeProcess(workdir, sim_url, config, {"OZ_BRIDGE_DATABASE_URL": database_url})
        await replica.start()
        replicas.append(replica)
    return replicas


async def claims_by_pid(database_url: str) -> Counter[int]:
    """Claimed queue heads per replica process (the holder names its pid)."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT claimed_by FROM outbox_heads WHERE claimed_by IS NOT NULL")
    finally:
        await connection.close()
    return Counter(int(row["claimed_by"].split(":")[1]) for row in rows)


async def nothing_pending(database_url: str) -> bool:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchval("SELECT count(*) FROM outbox WHERE status = 'pending'") == 0
    finally:
        await connection.close()


async def test_a_killed_replicas_claims_are_taken_over_within_seconds(
    tmp_path: Path, sim: Simulator, sim_url: str, receiver: WebhookReceiver, database_url: str
) -> None:
    receiver.delay = 0.5  # sends stay in flight long enough to be caught holding claims
    replicas = await start_replicas(3, tmp_path, sim_url, replica_config(receiver, claim_ttl=3), database_url)
    try:
        runs = [sim.create_run()["run_id"] for _ in range(90)]
        await wait_until(lambda: len(receiver.accepted) >= 10, what="delivery under way")
        held = await claims_by_pid(database_url)
        victim = next(r for r in replicas if r.proc is not None and r.proc.pid == held.most_common(1)[0][0])
        assert held[victim.proc.pid] > 0  # type: ignore[union-attr]
        await victim.kill()
        killed_at = asyncio.get_running_loop().time()
        expected = {(rid, kind) for rid in runs for kind in ("run.created", "run.queued")}
        await wait_until(lambda: {(b["run"]["run_id"], b["type"]) for b in receiver.accepted} >= expected,
                         within=30, what="every event")  # fmt: skip
        # The victim may have sent some of its claims before it died: they are taken over only
        # once its claims lapse, and resent. The old 120 s claim lease could not meet this deadline.
        await wait_until(lambda: nothing_pending(database_url), within=30, what="the killed replica's claims")
        print(f"takeover: nothing pending {asyncio.get_running_loop().time() - killed_at:.1f}s after the kill")
        for run_id in runs:  # order per run survived the takeover
            told = [ORDER[t] for r, t in pairs(receiver) if r == run_id]
            assert told == sorted(told)  # resends repeat an event, never reorder them
    finally:
        for replica in replicas:
            if replica.proc is not None and replica.proc.returncode is None:
                await replica.kill()


async def test_every_replica_delivers_its_share_of_a_few_busy_runs(
    tmp_path: Path, sim: Simulator, sim_url: str, receiver: WebhookReceiver, database_url: str
) -> None:
    receiver.delay = 0.02
    replicas = await start_replicas(3, tmp_path, sim_url, replica_config(receiver), database_url)
    try:
        # Ten runs with many events each: fewer queues than one replica's 16 slots, so one
        # replica could take them all, and keep them, were the work not shared.
        runs = [sim.create_run(state="INPROGRESS")["run_id"] for _ in range(10)]
        for run_id in runs:
            for _ in range(15):
                sim.add_artifact(run_id, "PULL_REQUEST")
        await wait_until(lambda: len(receiver.accepted) >= 10 * 17, within=60, what="every event")
        delivered: list[float] = []

        async def all_recorded() -> bool:  # counted once written back, a moment after the receiver saw them
            delivered[:] = [
                await r.metric('oz_bridge_deliveries_total{outcome="delivered",target="audit"}') for r in replicas
            ]
            return sum(delivered) >= 170

        await wait_until(all_recorded, what="every delivery recorded")
        assert all(count > 0 for count in delivered), delivered
    finally:
        for replica in replicas:
            if replica.proc is not None and replica.proc.returncode is None:
                await replica.kill()


async def test_a_replica_started_while_the_others_are_busy_gets_its_share(
    tmp_path: Path, sim: Simulator, sim_url: str, receiver: WebhookReceiver, database_url: str
) -> None:
    # Claims renewed 100 s apart: a replica that counted the others only at renewals would not
    # know of the newcomer before this work is done.
    config = replica_config(receiver, claim_ttl=300)
    replicas = await start_replicas(2, tmp_path, sim_url, config, database_url)
    try:
        # Two replicas take the heads of all ten runs between them and, slowed by the
        # receiver, still hold every one of them when a third replica starts.
        receiver.delay = 0.5
        runs = [sim.create_run(state="INPROGRESS")["run_id"] for _ in range(10)]
        for run_id in runs:
            for _ in range(30):
                sim.add_artifact(run_id, "PULL_REQUEST")
        await wait_until(lambda: len(receiver.accepted) >= 10, what="delivery under way")
        workdir = tmp_path / "late"
        workdir.mkdir()
        late = BridgeProcess(workdir, sim_url, config, {"OZ_BRIDGE_DATABASE_URL": database_url})
        replicas.append(late)
        await late.start()
        receiver.delay = 0.05
        await wait_until(lambda: len(receiver.accepted) >= 10 * 32, within=60, what="every event")
        await wait_until(lambda: nothing_pending(database_url), what="every delivery recorded")
        assert await late.metric('oz_bridge_deliveries_total{outcome="delivered",target="audit"}') > 0
    finally:
        for replica in replicas:
            if replica.proc is not None and replica.proc.returncode is None:
                await replica.kill()


async def test_survivors_stay_ready_while_one_takes_over_from_a_killed_leader(
    tmp_path: Path, sim: Simulator, sim_url: str, receiver: WebhookReceiver, database_url: str
) -> None:
    config = replica_config(receiver)
    config["poll"]["interval"] = 2.0  # lease 6 s: readiness gives the new leader until 8 s to poll
    replicas = await start_replicas(2, tmp_path, sim_url, config, database_url)
    try:

        async def one_leads_all_ready() -> bool:
            roles = [await leading(r) for r in replicas]
            return sorted(roles) == [False, True] and all([await ready(r) for r in replicas])

        await wait_until(one_leads_all_ready, what="one leader, every replica ready")
        leader, follower = replicas if await leading(replicas[0]) else replicas[::-1]
        polls_before = await follower.metric("oz_bridge_polls_total")
        await leader.kill()  # keeps the lease until it runs out
        answers: list[int] = []

        async def took_over_and_polled() -> bool:
            answers.append((await follower.get("/readyz"))[0])
            return await follower.metric("oz_bridge_polls_total") > polls_before

        await wait_until(took_over_and_polled, within=20, what="the follower to take over and poll")
        assert await leading(follower)
        assert set(answers) == {200}, answers  # never unready: the lease lapsed, then it polled at once
        run_id = sim.create_run()["run_id"]
        await wait_until(lambda: any(b["run"]["run_id"] == run_id for b in receiver.accepted), what="a new run")
    finally:
        for replica in replicas:
            if replica.proc is not None and replica.proc.returncode is None:
                await replica.kill()


ORDER = {"run.created": 0, "run.queued": 1}


def pairs(receiver: WebhookReceiver) -> list[tuple[str, str]]:
    return [(body["run"]["run_id"], body["type"]) for body in receiver.accepted]
