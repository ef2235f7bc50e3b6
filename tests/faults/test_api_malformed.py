"""Answers from the Oz API that must never stop the pipeline: the real ``oz-bridge run``, one case each.

Each test makes the simulator answer in one hostile way while other runs keep
changing, and asserts exactly what the signature-checking receiver gets, that
the problem is counted (``/metrics``) or named (``/readyz``), and that the
bridge stops cleanly with no error line in its log.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.sim import Simulator, format_ts, parse_ts
from bridge.sim.artifacts import make_artifact
from tests.e2e.harness import BridgeProcess
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.faults.api_support import (
    LIST_PATH,
    delivered,
    left_out,
    pairs,
    ready,
    readyz,
    running_bridge,
    sim_requests,
    stopped_cleanly,
    wait_for,
    webhook_config,
)

CREATED = ("run.created", "run.queued")


@pytest.fixture
async def bridge(tmp_path: Path, sim_url: str, receiver: WebhookReceiver) -> AsyncIterator[BridgeProcess]:
    async with running_bridge(tmp_path, sim_url, webhook_config(receiver)) as started:
        await wait_for(lambda: ready(started), "ready")
        yield started


def told(receiver: WebhookReceiver, run_id: str) -> list[str]:
    return [kind for rid, kind in pairs(receiver) if rid == run_id]


@pytest.mark.parametrize("junk", [None, "not an artifact"])
async def test_an_artifact_that_is_not_an_object(
    sim: Simulator, receiver: WebhookReceiver, bridge: BridgeProcess, junk: object
) -> None:
    bad = sim.create_run(state="INPROGRESS")["run_id"]
    sim.add_artifact(bad, "PULL_REQUEST")
    sim.inject_fault(mutate="artifact_not_object", run_id=bad, value=junk, count=100_000)
    other = sim.create_run()["run_id"]
    await wait_for(delivered(receiver, (bad, "artifact.pull_request"), (other, "run.queued")), "both runs told")
    sim.update_run(other, state="SUCCEEDED")
    sim.update_run(bad, state="FAILED")
    await wait_for(delivered(receiver, (other, "run.succeeded"), (bad, "run.failed")), "later changes")
    assert told(receiver, bad) == ["run.created", "run.started", "artifact.pull_request", "run.failed"]
    pr = next(b for b in receiver.accepted if b["type"] == "artifact.pull_request")
    assert pr["run"]["artifacts"] == [pr["artifact"]]  # the junk entry is left out of what is sent
    assert await left_out(bridge, "artifact_not_object") >= 1
    assert await ready(bridge)
    assert await stopped_cleanly(bridge) == []


@pytest.mark.parametrize("junk", [42, None])
async def test_a_runs_entry_that_is_not_an_object(
    sim: Simulator, receiver: WebhookReceiver, bridge: BridgeProcess, junk: object
) -> None:
    sim.inject_fault(mutate="run_not_object", value=junk, count=100_000)
    first = sim.create_run()["run_id"]
    await wait_for(delivered(receiver, (first, "run.queued")), "a run despite the junk entry")
    second = sim.create_run(state="INPROGRESS")["run_id"]
    await wait_for(delivered(receiver, (second, "run.started")), "the next run too")
    assert await left_out(bridge, "run_not_object") >= 2
    assert await ready(bridge)
    assert await stopped_cleanly(bridge) == []


async def test_a_run_updated_far_in_the_future(
    sim: Simulator, receiver: WebhookReceiver, bridge: BridgeProcess
) -> None:
    future = sim.create_run(created_at=format_ts(sim.now()), updated_at="2099-01-01T00:00:00Z")["run_id"]
    await wait_for(lambda: left_out(bridge, "updated_at_in_future"), "the future run left out")
    later = sim.create_run()["run_id"]  # with the cursor in 2099 this would never be seen
    await wait_for(delivered(receiver, (later, "run.queued")), "a later run")
    assert told(receiver, future) == []
    sim.update_run(future, state="INPROGRESS", updated_at=format_ts(sim.now()))  # the API sets it right
    await wait_for(delivered(receiver, (future, "run.started")), "the run once its time is sane")
    assert told(receiver, future) == ["run.created", "run.started"]
    assert await ready(bridge)
    assert await stopped_cleanly(bridge) == []


async def test_a_repeating_next_cursor(tmp_path: Path, sim: Simulator, sim_url: str, receiver: WebhookReceiver) -> None:
    async with running_bridge(tmp_path, sim_url, webhook_config(receiver, page_size=2)) as bridge:
        runs = [sim.create_run()["run_id"] for _ in range(3)]
        await wait_for(delivered(receiver, *[(r, "run.queued") for r in runs]), "the first runs")
        sim.inject_fault(mutate="repeat_cursor", count=100_000)
        later = [sim.create_run()["run_id"] for _ in range(5)]  # more than two pages behind the cursor
        await wait_for(lambda: _stalled(bridge, "cursor_repeated"), "the loop detected")
        await wait_for(delivered(receiver, *[(r, "run.queued") for r in later]), "every later run")
        before = sim_requests(sim)
        await asyncio.sleep(1.0)
        assert sim_requests(sim) - before < 20  # paging ends: not thousands of requests a second
        assert await stopped_cleanly(bridge) == []


async def test_the_same_run_twice_in_a_page_stale_copy_first(
    sim: Simulator, receiver: WebhookReceiver, bridge: BridgeProcess
) -> None:
    rid = sim.create_run(state="INPROGRESS")["run_id"]
    await wait_for(delivered(receiver, (rid, "run.started")), "first sighting")
    current = sim.update_run(rid, state="SUCCEEDED")
    stale = {"state": "INPROGRESS", "updated_at": current["updated_at"]}  # indistinguishable by time
    sim.inject_fault(mutate="duplicate_stale", run_id=rid, patch=stale, count=100_000)
    await wait_for(delivered(receiver, (rid, "run.succeeded")), "the newest copy")
    other = sim.create_run()["run_id"]
    await wait_for(delivered(receiver, (other, "run.queued")), "other runs")
    assert told(receiver, rid) == ["run.created", "run.started", "run.succeeded"]
    assert await left_out(bridge, "duplicate_in_page") >= 1
    assert await stopped_cleanly(bridge) == []


async def test_a_run_with_ten_thousand_artifacts(
    tmp_path: Path, sim: Simulator, sim_url: str, receiver: WebhookReceiver
) -> None:
    routes = [{"name": "states and PRs", "events": ["run.*", "artifact.pull_request"], "to": ["audit"]}]
    async with running_bridge(tmp_path, sim_url, webhook_config(receiver, routes)) as bridge:
        now = sim.now()
        files = [make_artifact("FILE", {"artifact_uid": f"f{i}"}, created_at=now) for i in range(10_000)]
        pull_request = make_artifact("PULL_REQUEST", created_at=now)
        big = sim.create_run(state="INPROGRESS", artifacts=[*files, pull_request])["run_id"]
        other = sim.create_run()["run_id"]
        await wait_for(delivered(receiver, (big, "artifact.pull_request"), (other, "run.queued")), "both", 60)
        sim.update_run(big, state="SUCCEEDED")
        await wait_for(delivered(receiver, (big, "run.succeeded")), "the big run's next change", 60)
        bodies = [b for b in receiver.accepted if b["run"]["run_id"] == big]
        assert [b["type"] for b in bodies] == ["run.created", "run.started", "artifact.pull_request", "run.succeeded"]
        assert all(len(b["run"]["artifacts"]) == 10_001 for b in bodies)  # the body as the contract says
        assert all(r.signature_valid for r in receiver.requests)
        assert _peak_rss_mib(bridge) < 300
        assert await stopped_cleanly(bridge) == []


@pytest.mark.parametrize("api_minutes", [-10, 10], ids=["api-10-min-behind", "api-10-min-ahead"])
async def test_the_apis_clock_minutes_away_from_the_bridges(
    tmp_path: Path, sim: Simulator, sim_url: str, receiver: WebhookReceiver, api_minutes: int
) -> None:
    sim.clock.advance(api_minutes * 60)  # type: ignore[attr-defined]
    before = sim.create_run()["run_id"]  # changed before the bridge's first boot: never announced
    await asyncio.sleep(1.1)  # the start point is taken from the API's Date header, whole seconds
    async with running_bridge(tmp_path, sim_url, webhook_config(receiver)) as bridge:
        await wait_for(lambda: ready(bridge), "ready")
        after = sim.create_run()["run_id"]
        await wait_for(delivered(receiver, (after, "run.queued")), "a run created after the start")
        late = sim.create_run(state="INPROGRESS")["run_id"]
        stamped = format_ts(sim.now())
        sim.update_run(late, state="FAILED", updated_at=stamped, visible_after=1.0)
        sim.create_run()  # moves the cursor past the late update's timestamp
        await wait_for(delivered(receiver, (late, "run.failed")), "a late-visible update, by a sweep", 20)
        assert told(receiver, before) == []
        status, detail = await readyz(bridge)
        assert status == 200 and abs(detail["api_clock_skew_seconds"] - api_minutes * 60) < 2
        assert any("clock" in w for w in detail["warnings"])
        skew = await bridge.metric("oz_bridge_api_clock_skew_seconds")
        assert abs(skew - api_minutes * 60) < 2
        assert await stopped_cleanly(bridge) == []


async def test_a_429_with_retry_after_is_waited_out(
    sim: Simulator, receiver: WebhookReceiver, bridge: BridgeProcess
) -> None:
    sim.inject_fault(429, retry_after=2, path=LIST_PATH)
    await wait_for(lambda: _stalled(bridge, "rate_limited"), "the 429")
    rid = sim.create_run()["run_id"]
    await wait_for(delivered(receiver, (rid, "run.queued")), "polling resumed")
    answers = [r for r in sim.requests(LIST_PATH) if r.path == LIST_PATH]
    limited = next(i for i, r in enumerate(answers) if r.status == 429)
    waited = parse_ts(answers[limited + 1].at) - parse_ts(answers[limited].at)
    assert waited.total_seconds() >= 1.9  # not one poll interval (0.2 s): what the API asked for
    assert await stopped_cleanly(bridge) == []


async def _stalled(bridge: BridgeProcess, reason: str) -> bool:
    return await bridge.metric(f'oz_bridge_poll_stalls_total{{reason="{reason}"}}') >= 1


def _peak_rss_mib(bridge: BridgeProcess) -> float:
    assert bridge.proc is not None
    status = Path(f"/proc/{bridge.proc.pid}/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return kib / 1024
