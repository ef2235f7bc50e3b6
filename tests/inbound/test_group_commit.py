"""One durable write for many requests: rows that arrive together share a transaction, and each
request is answered only once its own row is committed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbound.batching import GroupCommit
from bridge.inbound.inbox import Intake
from bridge.inbound.threads import ThreadDirectory
from bridge.metrics import Metrics
from bridge.store import inbox
from bridge.store.engine import create_engine, migrate
from bridge.store.inbox import NewInboxEntry
from tests.inbound.harness import Harness
from tests.pg import scratch_database


def count_commits(engine: AsyncEngine) -> list[int]:
    commits = [0]

    def on_commit(_conn: Any) -> None:
        commits[0] += 1

    event.listen(engine.sync_engine, "commit", on_commit)
    return commits


async def test_concurrent_replies_share_transactions_and_each_is_stored(harness: Harness) -> None:
    thread = await harness.thread()
    await harness.post_event(harness.reply(thread, "warm the directory"))
    commits = count_commits(harness.engine)

    replies = [harness.reply(thread, f"reply {n}") for n in range(40)]
    responses = await asyncio.gather(*(harness.post_event(reply) for reply in replies))

    assert [r.status for r in responses] == [200] * 40
    assert commits[0] < 40
    async with harness.engine.connect() as conn:
        assert len(await inbox.all_rows(conn, [inbox.PENDING])) == 41


async def test_no_answer_before_the_row_is_committed(harness: Harness) -> None:
    thread = await harness.thread()
    await harness.post_event(harness.reply(thread, "warm the directory"))
    # Hold SQLite's only connection in a write transaction: the inbox cannot commit meanwhile.
    async with harness.engine.begin():
        answer = asyncio.ensure_future(harness.post_event(harness.reply(thread, "wait for me")))
        await asyncio.sleep(0.5)
        assert not answer.done()
    assert (await answer).status == 200
    async with harness.engine.connect() as conn:
        assert len(await inbox.all_rows(conn)) == 2


@pytest.fixture
async def pg_engine() -> AsyncIterator[AsyncEngine]:
    async with scratch_database() as url:
        engine = create_engine(url)
        await migrate(engine)
        yield engine
        await engine.dispose()


async def test_a_row_the_database_refuses_fails_alone(pg_engine: AsyncEngine) -> None:
    stored: list[int] = []
    intake = Intake(GroupCommit(pg_engine), ThreadDirectory(pg_engine), Metrics(), on_stored=lambda: stored.append(1))
    refused = NewInboxEntry("Ev-bad", "k" * 100, {})  # longer than the kind column allows
    results = await asyncio.gather(
        *(intake.store(NewInboxEntry(f"Ev-{n}", "message", {"n": n})) for n in range(5)),
        intake.store(refused),
        return_exceptions=True,
    )
    assert results[:5] == [True] * 5
    assert isinstance(results[5], DBAPIError)
    assert len(stored) == 5
