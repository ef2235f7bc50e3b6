"""Outbox queries: idempotent enqueue, one head per (target, run) queue, exclusive claims."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.diff import diff_run
from bridge.store import outbox
from tests.conftest import make_run
from tests.test_diff import NOW, START

LEASE = timedelta(minutes=2)


async def test_enqueueing_the_same_event_twice_keeps_one_row(engine: AsyncEngine) -> None:
    events = diff_run(None, make_run("r1"), START, NOW)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(e, "t") for e in events], now)
        await outbox.enqueue(conn, [(e, "t") for e in events], now)
        assert len(await outbox.rows_for_run(conn, "r1")) == len(events)


async def test_only_the_oldest_pending_row_of_each_queue_is_claimable(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    a = diff_run(None, make_run("a"), START, NOW)
    b = diff_run(None, make_run("b"), START, NOW)
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(e, "t") for e in a + b] + [(e, "u") for e in a], now)
        claimed = await outbox.claim_due(conn, "w1", now, 10, LEASE)
    assert sorted((r.target, r.event_id) for r in claimed) == sorted([("t", a[0].id), ("t", b[0].id), ("u", a[0].id)])


async def test_a_claimed_row_is_not_handed_to_another_worker_until_its_lease_ends(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(diff_run(None, make_run("a"), START, NOW)[0], "t")], now)
        assert len(await outbox.claim_due(conn, "w1", now, 10, LEASE)) == 1
        assert await outbox.claim_due(conn, "w2", now, 10, LEASE) == []
        assert len(await outbox.claim_due(conn, "w2", now + LEASE + timedelta(seconds=1), 10, LEASE)) == 1


async def test_a_row_waiting_for_its_retry_blocks_its_queue_but_not_others(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    a = diff_run(None, make_run("a"), START, NOW)
    b = diff_run(None, make_run("b"), START, NOW)
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(e, "t") for e in a + b], now)
        [head_a, head_b] = await outbox.claim_due(conn, "w", now, 10, LEASE)
        await outbox.mark_retry(conn, head_a.id, now + timedelta(minutes=5), "HTTP 503")
        await outbox.mark_delivered(conn, head_b.id, now)
        claimed = await outbox.claim_due(conn, "w", now, 10, LEASE)
    assert [r.event_id for r in claimed] == [b[1].id]


async def test_purge_forgets_old_deliveries_but_keeps_pending_rows_and_dead_letters(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    events = diff_run(None, make_run("a"), START, NOW)  # run.created, run.queued
    dead_event = diff_run(None, make_run("b"), START, NOW)[0]
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(e, "t") for e in events] + [(dead_event, "t")], now)
        delivered, dead = await outbox.claim_due(conn, "w", now, 10, LEASE)
        await outbox.mark_delivered(conn, delivered.id, now - timedelta(days=8))
        await outbox.mark_dead(conn, dead.id, "HTTP 410")
        assert await outbox.purge_delivered(conn, now - timedelta(days=7)) == 1
        remaining = await outbox.rows_for_run(conn, "a") + await outbox.rows_for_run(conn, "b")
    assert sorted(r.status for r in remaining) == ["dead", "pending"]


async def test_release_claims_frees_rows_of_a_dead_worker(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(diff_run(None, make_run("a"), START, NOW)[0], "t")], now)
        await outbox.claim_due(conn, "w1", now, 10, LEASE)
        assert await outbox.release_claims(conn) == 1
        assert len(await outbox.claim_due(conn, "w2", now, 10, LEASE)) == 1
