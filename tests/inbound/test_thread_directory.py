"""Whose thread is it? Answered from memory when possible, from one shared read otherwise, never wrongly."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbound.threads import MARKER_WINDOW, ThreadAnswer, ThreadDirectory
from bridge.store import slack_threads

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "slack_placements" in statement:
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine.sync_engine, "before_cursor_execute", record)


async def marker(engine: AsyncEngine, run_id: str, channel_id: str | None, at: datetime = NOW) -> None:
    async with engine.begin() as conn:
        await slack_threads.reserve(
            conn, run_id, channel_id or "#by-name", channel_id=channel_id, claimed_by="p", event_id="e", now=at
        )


async def root(engine: AsyncEngine, run_id: str, channel_id: str, ts: str) -> None:
    await marker(engine, run_id, channel_id)
    async with engine.begin() as conn:
        await slack_threads.record_root(conn, run_id, channel_id, channel_id=channel_id, ts=ts, shown_updated_at=None)


def directory(engine: AsyncEngine) -> ThreadDirectory:
    return ThreadDirectory(engine, clock=lambda: NOW)


async def test_a_recorded_root_is_ours_and_remembered(engine: AsyncEngine, statements: list[str]) -> None:
    await root(engine, "run-1", "C1", "1.000100")
    threads = directory(engine)
    statements.clear()
    assert await threads.whose("C1", "1.000100") == ThreadAnswer("ours", "run-1")
    assert await threads.whose("C1", "1.000100") == ThreadAnswer("ours", "run-1")
    assert len(statements) == 2  # one lookup: the roots asked for, and recent markers


async def test_a_thread_that_is_neither_recorded_nor_announced_is_foreign_for_good(
    engine: AsyncEngine, statements: list[str]
) -> None:
    await root(engine, "run-1", "C1", "1.000100")
    threads = directory(engine)
    assert await threads.whose("C1", "9.000900") == ThreadAnswer("foreign")
    assert await threads.whose("C2", "1.000100") == ThreadAnswer("foreign")  # same ts, another channel
    statements.clear()
    assert await threads.whose("C1", "9.000900") == ThreadAnswer("foreign")
    assert statements == []


async def test_a_recent_marker_in_the_channel_means_maybe_and_is_asked_again(engine: AsyncEngine) -> None:
    await marker(engine, "run-1", "C1", NOW - timedelta(seconds=5))
    threads = directory(engine)
    assert await threads.whose("C1", "5.000500") == ThreadAnswer("maybe")
    assert await threads.whose("C2", "5.000500") == ThreadAnswer("foreign")
    async with engine.begin() as conn:
        await slack_threads.record_root(conn, "run-1", "C1", channel_id="C1", ts="5.000500", shown_updated_at=None)
    assert await threads.whose("C1", "5.000500") == ThreadAnswer("ours", "run-1")


async def test_a_marker_without_a_channel_id_makes_every_channel_maybe(engine: AsyncEngine) -> None:
    await marker(engine, "run-1", None)
    assert await directory(engine).whose("C7", "5.000500") == ThreadAnswer("maybe")


async def test_a_stale_marker_is_a_failed_post_not_a_root_on_its_way(engine: AsyncEngine) -> None:
    await marker(engine, "run-1", "C1", NOW - MARKER_WINDOW - timedelta(seconds=1))
    assert await directory(engine).whose("C1", "5.000500") == ThreadAnswer("foreign")


async def test_a_root_recorded_by_another_replica_is_found(engine: AsyncEngine) -> None:
    threads = directory(engine)
    assert await threads.whose("C1", "2.000200") == ThreadAnswer("foreign")
    await root(engine, "run-2", "C1", "3.000300")  # posted and recorded elsewhere after our first answer
    assert await threads.whose("C1", "3.000300") == ThreadAnswer("ours", "run-2")


async def test_concurrent_questions_share_one_lookup(engine: AsyncEngine, statements: list[str]) -> None:
    await root(engine, "run-1", "C1", "1.000100")
    threads = directory(engine)
    statements.clear()
    keys = [("C1", "1.000100")] + [("C1", f"{n}.000000") for n in range(2, 40)]
    answers = await asyncio.gather(*(threads.whose(*key) for key in keys))
    assert answers[0] == ThreadAnswer("ours", "run-1")
    assert {answer.whose for answer in answers[1:]} == {"foreign"}
    assert len(statements) <= 4  # at most two lookups (the first caller's, then everyone else's)
