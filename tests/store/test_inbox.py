"""The inbox table's queries: dedupe on insert, claims with leases, order per thread, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store import inbox
from bridge.store.inbox import NewInboxEntry
from bridge.store.tables import inbound_events

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def entry(event_id: str, *, dedupe: str | None = None, queue: str | None = None) -> NewInboxEntry:
    return NewInboxEntry(event_id, "message", {"event_id": event_id}, dedupe_key=dedupe, queue_key=queue)


async def put(engine: AsyncEngine, item: NewInboxEntry, at: datetime = T0) -> bool:
    async with engine.begin() as conn:
        return await inbox.store(conn, item, at)


async def claim(engine: AsyncEngine, holder: str = "w1", at: datetime = T0, limit: int = 10) -> list[str]:
    async with engine.begin() as conn:
        return [row.event_id for row in await inbox.claim_due(conn, holder, at, limit, LEASE)]


async def test_a_second_insert_of_the_same_event_id_is_a_duplicate(engine: AsyncEngine) -> None:
    assert await put(engine, entry("Ev1")) is True
    assert await put(engine, entry("Ev1")) is False
    async with engine.connect() as conn:
        assert [row.event_id for row in await inbox.all_rows(conn)] == ["Ev1"]


async def test_a_second_event_for_the_same_message_is_a_duplicate(engine: AsyncEngine) -> None:
    assert await put(engine, entry("Ev-message", dedupe="message:C1:1.000100")) is True
    assert await put(engine, entry("Ev-mention", dedupe="message:C1:1.000100")) is False
    assert await put(engine, entry("Ev-other", dedupe="message:C1:2.000100")) is True


async def test_rows_without_a_dedupe_key_never_clash_on_it(engine: AsyncEngine) -> None:
    assert await put(engine, entry("action:1")) is True
    assert await put(engine, entry("action:2")) is True


async def test_a_claimed_row_is_not_handed_out_again_until_its_lease_ends(engine: AsyncEngine) -> None:
    await put(engine, entry("Ev1"))
    assert await claim(engine, "w1") == ["Ev1"]
    assert await claim(engine, "w2", T0 + timedelta(seconds=30)) == []
    assert await claim(engine, "w2", T0 + LEASE + timedelta(seconds=1)) == ["Ev1"]


async def test_only_the_oldest_pending_row_of_a_thread_is_claimable(engine: AsyncEngine) -> None:
    await put(engine, entry("Ev-b", queue="thread:C1:1"), T0)
    await put(engine, entry("Ev-a", queue="thread:C1:1"), T0 + timedelta(seconds=1))
    await put(engine, entry("Ev-c", queue="thread:C1:2"), T0 + timedelta(seconds=2))
    later = T0 + timedelta(seconds=5)
    assert await claim(engine, at=later) == ["Ev-b", "Ev-c"]
    async with engine.begin() as conn:
        await inbox.mark_done(conn, "Ev-b", later)
    assert await claim(engine, at=later) == ["Ev-a"]


async def test_one_batch_keeps_its_order_within_a_thread_and_its_duplicates_out(engine: AsyncEngine) -> None:
    batch = [
        entry("Ev-z", queue="thread:C1:1", dedupe="message:C1:5"),
        entry("Ev-y", queue="thread:C1:1", dedupe="message:C1:5"),  # app_mention of the same message
        entry("Ev-x", queue="thread:C1:1", dedupe="message:C1:6"),
        entry("Ev-z", queue="thread:C1:1", dedupe="message:C1:7"),  # a retry within the batch
        entry("Ev-w"),
    ]
    async with engine.begin() as conn:
        assert await inbox.store_many(conn, batch, T0) == [True, False, True, False, True]
    assert await claim(engine, at=T0 + timedelta(seconds=1)) == ["Ev-z", "Ev-w"]
    async with engine.begin() as conn:
        await inbox.mark_done(conn, "Ev-z", T0)
        assert await inbox.store_many(conn, [entry("Ev-z"), entry("Ev-v", queue="thread:C1:1")], T0) == [False, True]
    assert await claim(engine, at=T0 + timedelta(seconds=1)) == ["Ev-x"]
    async with engine.begin() as conn:
        await inbox.mark_failed(conn, "Ev-x", T0, "gave up")
    assert await claim(engine, at=T0 + timedelta(seconds=1)) == ["Ev-v"]


async def test_a_long_thread_backlog_yields_one_head(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await inbox.store_many(conn, [entry(f"Ev-{i:04d}", queue="thread:C1:1") for i in range(500)], T0)
        await inbox.store_many(conn, [entry("Ev-other", queue="thread:C1:2")], T0 + timedelta(seconds=1))
    assert await claim(engine, at=T0 + timedelta(seconds=2), limit=10) == ["Ev-0000", "Ev-other"]


async def test_repair_gives_a_headless_queue_its_oldest_row_as_head(engine: AsyncEngine) -> None:
    await put(engine, entry("Ev-1", queue="thread:C1:1"), T0)
    await put(engine, entry("Ev-2", queue="thread:C1:1"), T0 + timedelta(seconds=1))
    async with engine.begin() as conn:
        await conn.execute(update(inbound_events).values(head=False))  # as a hand-edited database might be
    assert await claim(engine, at=T0 + timedelta(seconds=5)) == []
    async with engine.begin() as conn:
        assert await inbox.repair_heads(conn) == 1
        assert await inbox.repair_heads(conn) == 0
    assert await claim(engine, at=T0 + timedelta(seconds=5)) == ["Ev-1"]


async def test_a_row_waiting_for_its_retry_still_holds_back_its_thread(engine: AsyncEngine) -> None:
    await put(engine, entry("Ev-a", queue="thread:C1:1"), T0)
    await put(engine, entry("Ev-b", queue="thread:C1:1"), T0 + timedelta(seconds=1))
    async with engine.begin() as conn:
        await inbox.mark_retry(conn, "Ev-a", T0 + timedelta(minutes=5), "Oz API answered 503")
    assert await claim(engine, at=T0 + timedelta(seconds=10)) == []
    assert await claim(engine, at=T0 + timedelta(minutes=6)) == ["Ev-a"]


async def test_retry_done_and_failed_rows_record_what_happened(engine: AsyncEngine) -> None:
    for name in ("Ev-retry", "Ev-done", "Ev-failed"):
        await put(engine, entry(name))
    await claim(engine)
    async with engine.begin() as conn:
        await inbox.mark_retry(conn, "Ev-retry", T0 + timedelta(seconds=2), "Oz API answered 429")
        await inbox.record_outcome(conn, "Ev-done", {"result": "accepted"})
        await inbox.mark_done(conn, "Ev-done", T0)
        await inbox.mark_failed(conn, "Ev-failed", T0, "gave up")
    async with engine.connect() as conn:
        retry, done, failed = [await inbox.get(conn, name) for name in ("Ev-retry", "Ev-done", "Ev-failed")]
    assert retry is not None and retry.status == inbox.PENDING and retry.attempts == 1
    assert retry.last_error == "Oz API answered 429" and retry.next_attempt_at == T0 + timedelta(seconds=2)
    assert done is not None and done.status == inbox.DONE and done.outcome == {"result": "accepted"}
    assert failed is not None and failed.status == inbox.FAILED and failed.last_error == "gave up"


async def test_release_claims_gives_rows_back_now(engine: AsyncEngine) -> None:
    await put(engine, entry("Ev1"))
    await put(engine, entry("Ev2"))
    assert await claim(engine, "dead-worker") == ["Ev1", "Ev2"]
    async with engine.begin() as conn:
        assert await inbox.release_claims(conn, "someone-else") == 0
        assert await inbox.release_claims(conn) == 2
    assert await claim(engine, "w2") == ["Ev1", "Ev2"]


async def test_purge_forgets_only_rows_finished_long_ago(engine: AsyncEngine) -> None:
    for name in ("Ev-old", "Ev-new", "Ev-pending"):
        await put(engine, entry(name))
    async with engine.begin() as conn:
        await inbox.mark_done(conn, "Ev-old", T0)
        await inbox.mark_done(conn, "Ev-new", T0 + timedelta(days=3))
        assert await inbox.purge_finished(conn, T0 + timedelta(days=1)) == 1
        assert [row.event_id for row in await inbox.all_rows(conn)] == ["Ev-new", "Ev-pending"]
        assert await inbox.counts_by_status(conn) == {"done": 1, "pending": 1}
