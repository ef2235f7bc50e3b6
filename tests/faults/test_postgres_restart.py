"""PostgreSQL itself restarted in the middle of a burst, under three replicas of the real `oz-bridge run`.

While the database is down every replica's /readyz answers 503 and says the database is the reason;
once it is back, polling and delivery resume on their own, and every event of every run reaches the
receiver (at least once). The outage is kept short: other tests may share this PostgreSQL.

Needs root and the local cluster (`pg_ctlcluster`); skipped otherwise, except in CI, where it must run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.sim import Simulator
from tests.e2e.harness import API_KEY, BridgeProcess, fast_config, wait_until
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.pg import PG_ADMIN, scratch_database

REPLICAS = 3


def local_cluster() -> list[str]:
    """The pg_ctlcluster arguments (version, name) of the cluster behind the tests' PostgreSQL."""
    reason = None
    if os.geteuid() != 0:
        reason = "restarting PostgreSQL needs root"
    elif shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        reason = "no local PostgreSQL cluster (pg_ctlcluster, /etc/postgresql)"
    elif not PG_ADMIN.startswith(("postgresql://postgres@127.0.0.1:5432/", "postgresql://postgres@localhost:5432/")):
        reason = f"the tests' PostgreSQL ({PG_ADMIN.rsplit('@', 1)[-1]}) is not this machine's cluster"
    if reason is None:
        versions = sorted(os.listdir("/etc/postgresql"))
        if len(versions) == 1:
            return [versions[0], "main"]
        reason = f"several PostgreSQL versions in /etc/postgresql: {versions}"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def pg_ctl(cluster: list[str], action: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action], check=True, timeout=60)


def pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"], check=False).returncode == 0


@pytest.fixture
def cluster() -> Iterator[list[str]]:
    """The cluster, guaranteed to be running again when the test ends, however it ends."""
    found = local_cluster()
    assert pg_ready(), "PostgreSQL must be up before the test"
    yield found
    if not pg_ready():
        pg_ctl(found, "start")
    deadline = time.monotonic() + 60
    while not pg_ready():
        assert time.monotonic() < deadline, "PostgreSQL did not come back"
        time.sleep(0.2)


@pytest.fixture
def sim_api_key() -> str:
    return API_KEY


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as hook:
        yield hook


async def readiness(replica: BridgeProcess) -> tuple[int, dict[str, Any]]:
    status, body = await replica.get("/readyz")
    return status, json.loads(body)


def state_events(receiver: WebhookReceiver, kind: str) -> set[str]:
    return {body["run"]["run_id"] for body in receiver.accepted if body["type"] == kind}


async def test_postgresql_restarted_mid_burst_loses_nothing_and_readyz_tells_the_truth(
    cluster: list[str], tmp_path: Path, sim: Simulator, sim_url: str, receiver: WebhookReceiver
) -> None:
    config = fast_config(
        {"audit": {"type": "webhook", "url": receiver.url, "timeout": 2}},
        [{"name": "all", "events": ["*"], "to": ["audit"]}],
    )
    async with scratch_database() as url:
        replicas = []
        for n in range(REPLICAS):
            (tmp_path / f"r{n}").mkdir()
            replicas.append(BridgeProcess(tmp_path / f"r{n}", sim_url, config, {"OZ_BRIDGE_DATABASE_URL": url}))
        created: list[str] = []
        stop_burst = asyncio.Event()

        async def burst() -> None:
            while not stop_burst.is_set():
                created.append(sim.create_run()["run_id"])
                await asyncio.sleep(0.02)

        try:
            for replica in replicas:
                await replica.start()
            for replica in replicas:
                await wait_until(lambda r=replica: _ready(r), within=30, what="every replica ready")
            burst_task = asyncio.create_task(burst())
            await wait_until(lambda: len(receiver.accepted) >= 40, within=30, what="deliveries under way")

            down_at = time.monotonic()
            pg_ctl(cluster, "stop")
            try:
                for replica in replicas:
                    await wait_until(lambda r=replica: _unready_for_the_database(r), within=15, what="503 (database)")
            finally:
                pg_ctl(cluster, "start")
            up_at = time.monotonic()
            await wait_until(pg_ready, within=30, what="PostgreSQL back")

            await asyncio.sleep(1.0)  # the burst goes on after the restart
            stop_burst.set()
            await burst_task
            for replica in replicas:
                await wait_until(lambda r=replica: _ready(r), within=60, what="every replica ready again")
            ready_at = time.monotonic()
            expected = set(created)
            await wait_until(
                lambda: (
                    state_events(receiver, "run.created") >= expected
                    and state_events(receiver, "run.queued") >= expected
                ),
                within=90,
                what="every run's run.created and run.queued",
            )
            delivered_at = time.monotonic()

            for run_id in created:  # polling and delivery after the restart, for every run
                sim.update_run(run_id, state="SUCCEEDED")
            await wait_until(
                lambda: state_events(receiver, "run.succeeded") >= expected, within=90, what="every run.succeeded"
            )
            ids = [body["id"] for body in receiver.accepted]
            leaders = [await replica.metric("oz_bridge_is_leader") for replica in replicas]
            assert sorted(leaders) == [0, 0, 1], leaders
            for replica in replicas:
                assert replica.proc is not None and replica.proc.returncode is None, "a replica died"
            print(
                f"\nPostgreSQL down {up_at - down_at:.1f}s; every replica ready {ready_at - up_at:.1f}s after it came"
                f" back; backlog delivered {delivered_at - up_at:.1f}s after; {len(created)} runs, {len(set(ids))}"
                f" events, {len(ids) - len(set(ids))} delivered twice (at-least-once)"
            )
            for replica in replicas:
                assert await replica.stop() == 0
        finally:
            stop_burst.set()
            for replica in replicas:
                if replica.proc is not None and replica.proc.returncode is None:
                    await replica.kill()


async def _ready(replica: BridgeProcess) -> bool:
    try:
        status, _ = await readiness(replica)
    except OSError:
        return False
    return status == 200


async def _unready_for_the_database(replica: BridgeProcess) -> bool:
    status, detail = await readiness(replica)
    return status == 503 and "database" in str(detail.get("reason", ""))
