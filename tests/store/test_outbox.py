"""Outbox queries: idempotent enqueue, one head per (target, run) queue, exclusive renewable claims,
run bodies stored once per observation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.diff import diff_run
from bridge.events import Event
from bridge.store import outbox, queue_heads
from bridge.store import run_bodies as run_bodies_store
from bridge.store.outbox import OutboxRow, Settlement
from bridge.store.run_bodies import BodyCache
from bridge.store.tables import outbox as outbox_table
from bridge.store.tables import outbox_heads, run_bodies
from tests.conftest import make_run, pr_artifact
from tests.test_diff import NOW, START

TTL = timedelta(seconds=10)


async def claim(
    conn: AsyncConnection, holder: str, now: datetime, target: str = "t", limit: int = 10
) -> list[OutboxRow]:
    return await conn.run_sync(outbox.claim, holder, target, now, limit, TTL)


async def settle(conn: AsyncConnection, holder: str, settlements: list[Settlement]) -> None:
    """Write attempts back, and forget the run bodies no row needs any more."""
    await conn.run_sync(outbox.settle, holder, settlements, max(s.at for s in settlements))
    await conn.run_sync(run_bodies_store.forget_unreferenced, None)


def done(row: OutboxRow, at: datetime) -> Settlement:
    return Settlement(row, "delivered", at)


async def test_enqueueing_the_same_event_twice_keeps_one_row(engine: AsyncEngine) -> None:
    events = diff_run(None, make_run("r1"), START, NOW)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(e, "t") for e in events], now)
        await outbox.enqueue(conn, [(e, "t") for e in events], now)
        assert len(await outbox.rows_for_run(conn, "r1")) == len(events)
        assert (await conn.execute(select(func.count()).select_from(run_bodies))).scalar_one() == 1


async def test_only_the_oldest_pending_row_of_each_queue_is_claimable(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    a = diff_run(None, make_run("a"), START, NOW)
    b = diff_run(None, make_run("b"), START, NOW)
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(e, "t") for e in a + b] + [(e, "u") for e in a], now)
        claimed = await claim(conn, "w1", now) + await claim(conn, "w1", now, target="u")
    assert sorted((r.target, r.event_id) for r in claimed) == sorted([("t", a[0].id), ("t", b[0].id), ("u", a[0].id)])


async def test_a_claim_asks_only_for_free_slots(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    events = [e for n in range(5) for e in diff_run(None, make_run(f"r{n}"), START, NOW)]
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(e, "t") for e in events], now)
        assert len(await claim(conn, "w", now, limit=2)) == 2
        assert len(await claim(conn, "w", now, limit=10)) == 3


async def test_finishing_a_head_makes_the_next_row_of_its_queue_the_head(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    first, second = diff_run(None, make_run("a"), START, NOW)
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(first, "t"), (second, "t")], now)
        [head] = await claim(conn, "w", now)
        assert await claim(conn, "w", now) == []  # the second waits behind its head
        await settle(conn, "w", [done(head, now)])
        assert [r.event_id for r in await claim(conn, "w", now)] == [second.id]


async def test_a_claimed_head_is_not_handed_to_another_worker_until_its_claim_expires(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(diff_run(None, make_run("a"), START, NOW)[0], "t")], now)
        assert len(await claim(conn, "w1", now)) == 1
        assert await claim(conn, "w2", now + TTL - timedelta(seconds=1)) == []
        assert len(await claim(conn, "w2", now + TTL + timedelta(seconds=1))) == 1


async def test_renewing_keeps_a_claim_held_while_the_send_is_in_flight(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(diff_run(None, make_run("a"), START, NOW)[0], "t")], now)
        await claim(conn, "w1", now)
        later = now + TTL - timedelta(seconds=1)
        assert await conn.run_sync(queue_heads.renew, "w1", later, TTL) == 1
        assert await claim(conn, "w2", now + TTL + timedelta(seconds=1)) == []
        assert len(await claim(conn, "w2", later + TTL + timedelta(seconds=1))) == 1


async def test_a_worker_whose_claim_was_taken_over_does_not_move_the_new_holders_queue(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    first, second = diff_run(None, make_run("a"), START, NOW)
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(first, "t"), (second, "t")], now)
        [stale] = await claim(conn, "w1", now)
        expired = now + TTL + timedelta(seconds=1)
        [taken] = await claim(conn, "w2", expired)
        await settle(conn, "w1", [done(stale, expired)])  # the slow first holder finishes late
        assert await claim(conn, "w3", expired) == []  # the head is still w2's
        await settle(conn, "w2", [done(taken, expired)])
        assert [r.event_id for r in await claim(conn, "w3", expired)] == [second.id]


async def test_a_row_waiting_for_its_retry_blocks_its_queue_but_not_others(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    a = diff_run(None, make_run("a"), START, NOW)
    b = diff_run(None, make_run("b"), START, NOW)
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(e, "t") for e in a + b], now)
        heads = {r.run_id: r for r in await claim(conn, "w", now)}
        retry_at = now + timedelta(seconds=5)  # while b's next head is still claimed
        await settle(conn, "w", [Settlement(heads["a"], "retry", now, retry_at, "HTTP 503"), done(heads["b"], now)])
        assert [r.event_id for r in await claim(conn, "w", now)] == [b[1].id]
        [retried] = await claim(conn, "w", retry_at)
    assert (retried.event_id, retried.attempts, retried.last_error) == (a[0].id, 1, "HTTP 503")


async def test_purge_forgets_old_deliveries_but_keeps_pending_rows_and_dead_letters(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    events = diff_run(None, make_run("a"), START, NOW)  # run.created, run.queued
    dead_event = diff_run(None, make_run("b"), START, NOW)[0]
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(e, "t") for e in events] + [(dead_event, "t")], now)
        heads = {r.run_id: r for r in await claim(conn, "w", now)}
        await settle(
            conn,
            "w",
            [done(heads["a"], now - timedelta(days=8)), Settlement(heads["b"], "dead", now, error="HTTP 410")],
        )
        assert await outbox.purge_delivered(conn, now - timedelta(days=7)) == 1
        remaining = await outbox.rows_for_run(conn, "a") + await outbox.rows_for_run(conn, "b")
    assert sorted(r.status for r in remaining) == ["dead", "pending"]


async def test_release_claims_frees_heads_of_a_dead_worker(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(diff_run(None, make_run("a"), START, NOW)[0], "t")], now)
        await claim(conn, "w1", now)
        assert await outbox.release_claims(conn, now=now) == 1
        assert len(await claim(conn, "w2", now)) == 1


async def test_a_requeued_dead_letter_goes_back_in_its_queue(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    event = diff_run(None, make_run("a"), START, NOW)[0]
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(event, "t")], now)
        [head] = await claim(conn, "w", now)
        await settle(conn, "w", [Settlement(head, "dead", now, error="HTTP 400")])
        assert await claim(conn, "w", now) == []
        [dead] = await outbox.dead_letters(conn)
        assert await outbox.requeue_dead(conn, [dead.id], now) == 1
        [again] = await claim(conn, "w", now)
    assert again.event.run == event.run and again.attempts == 0


def many_artifacts_run(count: int) -> dict[str, object]:
    artifacts = [pr_artifact(f"https://github.com/acme/shop/pull/{n}") for n in range(count)]
    return make_run("big", state="INPROGRESS", artifacts=artifacts)


async def test_an_observation_stores_its_run_body_once_however_many_events_and_targets(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    run = many_artifacts_run(200)
    events = diff_run(None, run, START, NOW)
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(e, t) for e in events for t in ("t", "u")], now)
        assert (await conn.execute(select(func.count()).select_from(run_bodies))).scalar_one() == 1
        payloads = (await conn.execute(select(outbox_table.c.payload))).scalars().all()
        assert not any("run" in payload for payload in payloads)  # the body is not copied into rows
        [head] = await claim(conn, "w", now)
        stored = await outbox.rows_for_run(conn, "big")
    assert len(stored) == 2 * len(events) and all(r.run == run for r in stored)
    assert head.event.to_payload() == events[0].to_payload()  # the body is joined back as it was


async def test_a_run_body_is_forgotten_once_every_row_using_it_is_delivered(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    events = diff_run(None, make_run("a", artifacts=[pr_artifact()]), START, NOW)

    async def bodies() -> int:
        return int((await conn.execute(select(func.count()).select_from(run_bodies))).scalar_one())

    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(e, "t") for e in events], now)
        for _ in events[:-1]:
            [head] = await claim(conn, "w", now)
            await settle(conn, "w", [done(head, now)])
            assert await bodies() == 1  # the last row still needs it
        [last] = await claim(conn, "w", now)
        await settle(conn, "w", [done(last, now)])
        assert await bodies() == 0
        assert (await conn.execute(select(func.count()).select_from(outbox_heads))).scalar_one() == 0


async def test_an_event_without_a_run_is_queued_by_its_own_key(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    digest = Event(id="evt_digest", type="digest", run_id="digest:mornings", created_at=NOW, run=None)  # type: ignore[arg-type]
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(digest, "t")], now)
        [head] = await claim(conn, "w", now)
        assert (head.run_id, head.run, head.body_id) == ("digest:mornings", None, None)
        await settle(conn, "w", [done(head, now)])
        assert await outbox.counts_by_status(conn) == {}


async def test_concurrent_workers_claim_disjoint_heads(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    events = [e for n in range(30) for e in diff_run(None, make_run(f"r{n}"), START, NOW)]
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(e, "t") for e in events], now)

    async def one(holder: str) -> list[str]:
        async with engine.begin() as conn:
            return [r.event_id for r in await claim(conn, holder, now, limit=12)]

    claimed = await asyncio.gather(*(one(f"w{n}") for n in range(3)))
    ids = [i for batch in claimed for i in batch]
    assert len(ids) == len(set(ids)) == 30


async def test_run_body_ids_are_never_reused_so_a_cached_body_is_never_another_runs(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    first = diff_run(None, make_run("a"), START, NOW)[0]
    second = diff_run(None, make_run("b", state="FAILED"), START, NOW)[0]
    cache = BodyCache()
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(first, "t")], now)
        [head] = await conn.run_sync(outbox.claim, "w", "t", now, 1, TTL, cache)
        await settle(conn, "w", [done(head, now)])  # its body is forgotten
        await outbox.enqueue(conn, [(second, "t")], now)
        [again] = await conn.run_sync(outbox.claim, "w", "t", now, 1, TTL, cache)
    assert again.run == second.run


async def test_a_row_whose_run_body_is_gone_is_dead_lettered_never_sent_without_its_run(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    [first, second] = diff_run(None, make_run("a"), START, NOW)[:2]
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(first, "t"), (second, "u")], now)
        await conn.execute(run_bodies.delete())
        claimed = await claim(conn, "w", now) + await claim(conn, "w", now, target="u")
        dead = await outbox.dead_letters(conn)
        heads_left = (await conn.execute(select(func.count()).select_from(outbox_heads))).scalar_one()
    assert claimed == []
    assert sorted((d.target, d.event_id) for d in dead) == [("t", first.id), ("u", second.id)]
    assert all("run body" in (d.last_error or "") for d in dead)
    assert heads_left == 0


async def test_the_gauges_count_pending_and_dead_rows_by_target_and_never_delivered_ones(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    a = diff_run(None, make_run("a"), START, NOW)
    b = diff_run(None, make_run("b"), START, NOW)
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(e, "t") for e in a + b] + [(e, "u") for e in a], now)
        heads = await claim(conn, "w", now)  # the heads of a and b at t
        await settle(conn, "w", [done(heads[0], now), Settlement(heads[1], "dead", now, error="HTTP 410")])
        counts = await outbox.gauge_counts(conn)
        assert counts == {("t", "pending"): len(a + b) - 2, ("t", "dead"): 1, ("u", "pending"): len(a)}
        assert counts == await outbox.counts_by_status(conn)  # what the gauges meant before, for less
