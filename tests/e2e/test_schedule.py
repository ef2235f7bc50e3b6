"""Events from the clock, end to end: simulator → oz-bridge run (subprocess) → signed webhooks, with short intervals."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.diff import parse_time
from bridge.events import event_id, rfc3339
from bridge.sim import Simulator
from tests.e2e.conftest import WEBHOOK_SECRET
from tests.e2e.harness import BridgeProcess, fast_config, wait_until
from tests.fakes.webhook_receiver import WebhookReceiver

EVERY = 1.0  # reminders.blocked_every in these tests, seconds


def of_run(receiver: WebhookReceiver, run_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    return [
        body
        for body in receiver.accepted
        if body["run"] and body["run"]["run_id"] == run_id and (kind is None or body["type"] == kind)
    ]


def config(receiver: WebhookReceiver, **sections: Any) -> dict[str, Any]:
    targets = {"audit": {"type": "webhook", "url": receiver.url, "secret": WEBHOOK_SECRET, "timeout": 2}}
    return fast_config(targets, [{"name": "all", "events": ["*"], "to": ["audit"]}]) | sections


async def test_a_blocked_run_is_reminded_on_time_until_it_moves(
    sim: Simulator, receiver: WebhookReceiver, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge = bridges(config(receiver, reminders={"blocked_every": f"{EVERY}s"}))
    await bridge.start()
    run = sim.create_run(title="Needs a decision", state="BLOCKED", status_message={"message": "Which region?"})
    rid, blocked_since = run["run_id"], rfc3339(parse_time(run["updated_at"]))  # ids use the canonical form
    await wait_until(lambda: len(of_run(receiver, rid, "run.still_blocked")) >= 3, within=20, what="three reminders")
    sim.update_run(rid, state="INPROGRESS", status_message=None)
    await wait_until(lambda: of_run(receiver, rid, "run.started"), what="the run to move")
    await asyncio.sleep(4 * EVERY)  # long enough for several more reminders, had the bridge kept sending them

    reminders = of_run(receiver, rid, "run.still_blocked")
    numbers = []
    for body in reminders:
        waited = (parse_time(body["created_at"]) - parse_time(blocked_since)).total_seconds()
        number = next(
            n for n in range(1, 100) if body["id"] == event_id(rid, "run.still_blocked", blocked_since, str(n))
        )
        assert number * EVERY <= waited  # never early
        assert body["previous_state"] is None and body["run"]["state"] == "BLOCKED"
        numbers.append(number)
    assert numbers == sorted(set(numbers)) and numbers[0] == 1  # each once, in order, from the first
    types = [body["type"] for body in of_run(receiver, rid)]
    assert types.index("run.started") > max(i for i, kind in enumerate(types) if kind == "run.still_blocked")
    assert all(r.signature_valid for r in receiver.requests)
    assert await bridge.stop() == 0


async def test_a_run_that_stops_updating_is_stuck_once(
    sim: Simulator, receiver: WebhookReceiver, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge = bridges(config(receiver, reminders={"stuck_after": "1s"}))
    await bridge.start()
    quiet = sim.create_run(title="Hangs", state="INPROGRESS")["run_id"]
    busy = sim.create_run(title="Keeps talking", state="INPROGRESS")["run_id"]

    async def keep_talking() -> None:  # the busy run never goes a second without an update
        for step in range(1000):
            await asyncio.sleep(0.3)
            sim.update_run(busy, status_message={"message": f"step {step}"})

    talking = asyncio.create_task(keep_talking())
    try:
        await wait_until(lambda: of_run(receiver, quiet, "run.stuck"), what="run.stuck")
        await asyncio.sleep(3)  # three more quiet seconds: still told once
    finally:
        talking.cancel()
    [stuck] = of_run(receiver, quiet, "run.stuck")
    assert stuck["run"]["state"] == "INPROGRESS" and stuck["previous_state"] is None
    assert of_run(receiver, busy, "run.stuck") == []
    assert await bridge.stop() == 0


async def test_costs_crossing_the_budget_are_told_once(
    sim: Simulator, receiver: WebhookReceiver, bridges: Callable[..., BridgeProcess]
) -> None:
    bridge = bridges(config(receiver, budgets={"run_usd": 1.0}))
    await bridge.start()
    rid = sim.create_run(state="INPROGRESS", request_usage={"inference_cost_usd": 0.4})["run_id"]
    for cost in (0.8, 1.0, 1.3, 2.5):
        await wait_until(lambda: of_run(receiver, rid), what="the run to be seen")
        await asyncio.sleep(0.5)
        sim.update_run(rid, request_usage={"inference_cost_usd": cost, "compute_cost_usd": 0.01})
    sim.update_run(rid, state="SUCCEEDED")
    await wait_until(lambda: of_run(receiver, rid, "run.succeeded"), what="the run to end")
    await asyncio.sleep(1.5)
    [exceeded] = of_run(receiver, rid, "run.cost_exceeded")
    usage = exceeded["run"]["request_usage"]
    assert usage["inference_cost_usd"] + usage["compute_cost_usd"] > 1.0
    assert await bridge.stop() == 0


@pytest.fixture
async def two_more_receivers() -> AsyncIterator[tuple[WebhookReceiver, WebhookReceiver]]:
    async with WebhookReceiver() as shop, WebhookReceiver() as pricey:
        yield shop, pricey


async def test_metadata_and_cost_routes_reach_only_their_targets(
    sim: Simulator,
    receiver: WebhookReceiver,
    two_more_receivers: tuple[WebhookReceiver, WebhookReceiver],
    bridges: Callable[..., BridgeProcess],
) -> None:
    shop, pricey = two_more_receivers
    targets = {
        "audit": {"type": "webhook", "url": receiver.url, "secret": WEBHOOK_SECRET},
        "shop": {"type": "webhook", "url": shop.url},
        "pricey": {"type": "webhook", "url": pricey.url},
    }
    routes = [
        {"name": "all", "events": ["*"], "to": ["audit"]},
        {"name": "shop-team", "events": ["run.*"], "metadata": {"team": "shop", "ticket_id": "SHOP-*"}, "to": ["shop"]},
        {"name": "expensive", "events": ["run.*"], "min_cost_usd": 5, "to": ["pricey"]},
    ]
    bridge = bridges(fast_config(targets, routes))
    await bridge.start()
    ours = sim.create_run(metadata={"team": "shop", "ticket_id": "SHOP-7"}, request_usage={"inference_cost_usd": 1})
    costly = sim.create_run(metadata={"team": "web", "ticket_id": "SHOP-8"}, request_usage={"compute_cost_usd": 9})
    other = sim.create_run(metadata={"Team": "shop", "ticket_id": "SHOP-9"})
    ids = [run["run_id"] for run in (ours, costly, other)]
    await wait_until(lambda: len(receiver.accepted) == 6, what="every event at the audit target")
    await asyncio.sleep(1)
    assert {body["run"]["run_id"] for body in shop.accepted} == {ids[0]}
    assert {body["run"]["run_id"] for body in pricey.accepted} == {ids[1]}
    assert len(shop.accepted) == len(pricey.accepted) == 2  # run.created and run.queued, each once
    assert await bridge.stop() == 0


def digests(receiver: WebhookReceiver) -> list[dict[str, Any]]:
    return [body for body in receiver.accepted if body["type"] == "digest"]


async def test_a_digest_arrives_once_at_its_time_with_correct_counts(
    sim: Simulator, receiver: WebhookReceiver, bridges: Callable[..., BridgeProcess]
) -> None:
    every_minute = {"name": "minutely", "cron": "* * * * *", "timezone": "Europe/Paris", "window": "1h"}
    bridge = bridges(config(receiver, digests=[every_minute | {"to": ["audit"]}]))
    await bridge.start()
    usage = {"inference_cost_usd": 0.75, "compute_cost_usd": 0.25}
    failed = sim.create_run(title="Broke", state="INPROGRESS", agent_config={"name": "fixer"}, request_usage=usage)
    sim.create_run(title="Fine", state="SUCCEEDED", agent_config={"name": "fixer"}, request_usage=usage)
    sim.create_run(title="Going", state="INPROGRESS")
    status = {"message": "Tests failed", "error_code": "internal_error"}
    sim.update_run(failed["run_id"], state="FAILED", status_message=status)
    await wait_until(lambda: len(receiver.accepted) == 6, what="the runs to be told")  # created + state, each
    counted_from = datetime.now(UTC)
    wait = 60 - counted_from.second + 15  # the next minute, and a margin for a loaded machine

    def after_the_runs() -> list[dict[str, Any]]:
        return [b for b in digests(receiver) if parse_time(b["digest"]["window_end"]) > counted_from]

    await wait_until(lambda: after_the_runs(), within=wait, what="the digest after the runs")
    await asyncio.sleep(2)
    [body] = after_the_runs()
    digest = body["digest"]
    assert body["run"] is None and body["previous_state"] is None and body["artifact"] is None
    assert digest["name"] == "minutely" and digest["timezone"] == "Europe/Paris"
    assert parse_time(digest["window_end"]).second == 0 and digest["window_end"].endswith("Z")
    assert (parse_time(digest["window_end"]) - parse_time(digest["window_start"])).total_seconds() == 3600
    assert (digest["runs"], digest["by_state"]) == (3, {"FAILED": 1, "INPROGRESS": 1, "SUCCEEDED": 1})
    assert digest["failed"] == [
        {
            "run_id": failed["run_id"],
            "title": "Broke",
            "session_link": failed["session_link"],
            "status_message": status,
        }
    ]
    assert math.isclose(digest["cost_usd"], 2.0) and digest["by_agent"] == {"fixer": 2, "(none)": 1}
    window_ends = [b["digest"]["window_end"] for b in digests(receiver)]
    assert len(window_ends) == len(set(window_ends))  # once per scheduled time
    assert body["id"] == event_id("digest:minutely", "digest", digest["window_end"])
    assert await bridge.stop() == 0
