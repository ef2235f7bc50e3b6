"""What the pipeline survives: ties, late updates, API faults, failing receivers, kill -9."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.sim import Simulator, format_ts
from tests.e2e.conftest import WEBHOOK_SECRET
from tests.e2e.harness import API_KEY, BridgeProcess, wait_until
from tests.fakes.webhook_receiver import WebhookReceiver

RUNS_PATH = "/api/v1/agent/runs"


def pairs(receiver: WebhookReceiver) -> list[tuple[str, str]]:
    return [(body["run"]["run_id"], body["type"]) for body in receiver.accepted]


async def test_page_boundaries_inside_updated_at_ties_lose_nothing(
    sim: Simulator,
    receiver: WebhookReceiver,
    bridges: Callable[..., BridgeProcess],
    webhook_config: Callable[..., dict[str, Any]],
) -> None:
    bridge = bridges(webhook_config(page_size=2))
    await bridge.start()
    sim.clock.freeze()  # type: ignore[attr-defined]
    first = [sim.create_run()["run_id"] for _ in range(5)]

    def expected(runs: list[str]) -> list[tuple[str, str]]:
        return sorted((r, t) for r in runs for t in ("run.created", "run.queued"))

    await wait_until(lambda: sorted(pairs(receiver)) == expected(first), what="five tied runs")
    # More runs at the very same instant the cursor now stands on: strict updated_after
    # can't see them, the lookback sweep must.
    later = [sim.create_run()["run_id"] for _ in range(3)]
    await wait_until(lambda: len(pairs(receiver)) >= 16, what="tied runs after the cursor")
    sim.clock.unfreeze()  # type: ignore[attr-defined]
    assert sorted(pairs(receiver)) == expected(first + later)
    assert await bridge.stop() == 0


async def test_late_visible_update_inside_the_lookback_is_caught(
    sim: Simulator, receiver: WebhookReceiver, bridge: BridgeProcess
) -> None:
    late = sim.create_run(state="INPROGRESS")["run_id"]
    await wait_until(lambda: (late, "run.started") in pairs(receiver), what="first sighting")
    stamped = format_ts(sim.now())
    sim.update_run(late, state="FAILED", updated_at=stamped, visible_after=1.0)
    other = sim.create_run()["run_id"]  # moves the cursor past the late update's timestamp
    await wait_until(lambda: (other, "run.queued") in pairs(receiver), what="cursor moved on")
    await wait_until(lambda: (late, "run.failed") in pairs(receiver), within=10, what="late update")
    assert pairs(receiver).count((late, "run.failed")) == 1
    assert await bridge.stop() == 0


async def test_api_errors_back_off_show_in_readiness_and_recover(
    sim: Simulator, receiver: WebhookReceiver, bridge: BridgeProcess
) -> None:
    await wait_until(lambda: _ready(bridge), what="ready")
    sim.inject_fault(500, count=10_000, path=RUNS_PATH)
    rid = sim.create_run()["run_id"]
    await wait_until(lambda: _not_ready(bridge), what="readiness to fail")
    status, body = await bridge.get("/readyz")
    assert status == 503 and "no successful poll" in json.loads(body)["reason"]
    sim.faults.clear()
    sim.inject_fault(429, count=2, retry_after=0.1, path=RUNS_PATH)
    sim.inject_fault(malformed=True, count=1, path=RUNS_PATH)
    sim.inject_fault(malformed="wrong_shape", count=1, path=RUNS_PATH)
    await wait_until(lambda: (rid, "run.queued") in pairs(receiver), what="recovery")
    await wait_until(lambda: _ready(bridge), what="ready again")
    assert await bridge.metric('oz_bridge_polls_total{result="error"}') >= 5
    assert await bridge.stop() == 0
    log = "".join(bridge.output)
    assert API_KEY not in log and WEBHOOK_SECRET not in log
    assert "Traceback" not in log


async def _ready(bridge: BridgeProcess) -> bool:
    return (await bridge.get("/readyz"))[0] == 200


async def _not_ready(bridge: BridgeProcess) -> bool:
    return (await bridge.get("/readyz"))[0] == 503


async def test_receiver_503s_are_retried_with_the_same_id_and_order_kept(
    sim: Simulator,
    receiver: WebhookReceiver,
    bridges: Callable[..., BridgeProcess],
    webhook_config: Callable[..., dict[str, Any]],
) -> None:
    receiver.script = [503, 503, 503]
    bridge = bridges(webhook_config())
    await bridge.start()
    rid = sim.create_run(state="INPROGRESS")["run_id"]
    await wait_until(lambda: pairs(receiver) == [(rid, "run.created"), (rid, "run.started")], what="delivery")
    attempts = [r.headers["webhook-id"] for r in receiver.requests]
    assert attempts[:4] == [attempts[0]] * 4  # three 503s, then the same event accepted
    assert len({r.headers["webhook-timestamp"] for r in receiver.requests[:4]}) >= 2 or len(receiver.requests) >= 4
    assert await bridge.metric('oz_bridge_deliveries_total{outcome="retry",target="audit"}') == 3
    assert await bridge.stop() == 0


async def test_receiver_rejection_is_dead_lettered_and_replayable(
    sim: Simulator,
    receiver: WebhookReceiver,
    bridges: Callable[..., BridgeProcess],
    webhook_config: Callable[..., dict[str, Any]],
) -> None:
    receiver.script = [410]
    bridge = bridges(webhook_config())
    await bridge.start()
    rid = sim.create_run()["run_id"]
    await wait_until(lambda: pairs(receiver) == [(rid, "run.queued")], what="the later event")
    assert await bridge.metric("oz_bridge_dead_letters") == 1
    assert await bridge.stop() == 0


async def test_kill_9_during_a_burst_loses_no_event(
    sim: Simulator,
    receiver: WebhookReceiver,
    bridges: Callable[..., BridgeProcess],
    webhook_config: Callable[..., dict[str, Any]],
) -> None:
    receiver.delay = 0.01
    bridge = bridges(webhook_config(page_size=7))
    await bridge.start()
    runs = [sim.create_run(state="QUEUED")["run_id"] for _ in range(40)]
    for rid in runs:
        sim.update_run(rid, state="INPROGRESS")
    await wait_until(lambda: len(receiver.accepted) >= 10, what="burst under way")
    await bridge.kill()
    for rid in runs[:20]:
        sim.update_run(rid, state="SUCCEEDED")  # changes that happen while the bridge is down
    await bridge.start()
    # A run that went INPROGRESS → SUCCEEDED while the bridge was down may never have
    # been seen INPROGRESS: its run.started is then rightly never invented.
    required = {(r, "run.created") for r in runs} | {(r, "run.started") for r in runs[20:]}
    required |= {(r, "run.succeeded") for r in runs[:20]}
    allowed = required | {(r, "run.started") for r in runs[:20]}
    try:
        await wait_until(lambda: set(pairs(receiver)) >= required, within=30, what="every event after restart")
    except AssertionError:
        missing = sorted(required - set(pairs(receiver)))
        raise AssertionError(f"missing {len(missing)}: {missing[:6]}") from None
    assert set(pairs(receiver)) <= allowed
    ids_per_pair: dict[tuple[str, str], set[str]] = {}
    for body in receiver.accepted:
        ids_per_pair.setdefault((body["run"]["run_id"], body["type"]), set()).add(body["id"])
    assert all(len(ids) == 1 for ids in ids_per_pair.values())  # a resend carries the same id
    assert await bridge.stop() == 0


async def test_an_idle_tick_costs_exactly_one_list_request(
    sim: Simulator, receiver: WebhookReceiver, bridge: BridgeProcess
) -> None:
    await wait_until(lambda: _ready(bridge), what="ready")
    polls_before = await bridge.metric('oz_bridge_polls_total{result="ok"}')
    requests_before = len(sim.requests(RUNS_PATH))
    await wait_until(lambda: len(sim.requests(RUNS_PATH)) >= requests_before + 10, what="ten idle ticks")
    polls_after = await bridge.metric('oz_bridge_polls_total{result="ok"}')
    requests_after = len(sim.requests(RUNS_PATH))
    assert await bridge.stop() == 0
    # The metric is read between ticks, so allow one tick in flight either side.
    assert abs((requests_after - requests_before) - (polls_after - polls_before)) <= 1
    assert receiver.requests == []


async def test_restart_does_not_re_announce_anything(
    sim: Simulator, receiver: WebhookReceiver, bridge: BridgeProcess
) -> None:
    rid = sim.create_run(state="INPROGRESS")["run_id"]
    await wait_until(lambda: len(receiver.accepted) == 2, what="first events")
    assert await bridge.stop() == 0
    await bridge.start()
    await wait_until(lambda: _ready(bridge), what="ready after restart")
    sim.update_run(rid, state="SUCCEEDED")
    await wait_until(lambda: len(receiver.accepted) == 3, what="the one new event")
    assert pairs(receiver)[-1] == (rid, "run.succeeded")
    assert await bridge.stop() == 0


async def test_an_api_down_since_start_is_named_in_readiness_and_counted(
    tmp_path: Path, webhook_config: Callable[..., dict[str, Any]]
) -> None:
    bridge = BridgeProcess(tmp_path, "http://127.0.0.1:1", webhook_config())
    await bridge.start()
    try:
        await wait_until(lambda: _not_ready(bridge), what="readiness to fail")
        await wait_until(lambda: _poll_errors(bridge), what="a failed poll")
        status, body = await bridge.get("/readyz")
        detail = json.loads(body)
        assert status == 503 and detail["reason"] == "no successful poll yet"
        assert detail["poll_error"]  # e.g. "APITimeoutError: Request timed out."
        assert await bridge.metric("oz_bridge_poll_requests_total") >= 1
    finally:
        assert await bridge.stop() == 0


async def _poll_errors(bridge: BridgeProcess) -> bool:
    return await bridge.metric('oz_bridge_polls_total{result="error"}') >= 1
