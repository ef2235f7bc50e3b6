"""Is it a bridge thread? Answered from memory when possible, from one shared read otherwise.

"Ours" is remembered for good; "foreign" only for a while, because a thread becomes the bridge's
later (a mention asking for a run, a run created elsewhere naming the thread); in this process a
thread made the bridge's is known at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbound.threads import FOREIGN_TTL, MARKER_WINDOW, ThreadDirectory
from bridge.store import slack_placements, slack_started, slack_threads
from bridge.store.slack_placements import THREAD_PLACE, PlannedPlacement

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "slack_placements" in statement or "slack_started_threads" in statement:
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


async def started_placement(engine: AsyncEngine, run_id: str, channel_id: str, thread_ts: str) -> None:
    planned = PlannedPlacement(run_id, THREAD_PLACE, "started", channel_id, thread_ts, owns_thread=True)
    async with engine.begin() as conn:
        await slack_placements.reserve(conn, planned, claimed_by="p", event_id="e", now=NOW)


def directory(engine: AsyncEngine, clock: Clock | None = None) -> ThreadDirectory:
    return ThreadDirectory(engine, clock=clock or Clock())


async def test_a_recorded_root_is_ours_and_remembered(engine: AsyncEngine, statements: list[str]) -> None:
    await root(engine, "run-1", "C1", "1.000100")
    threads = directory(engine)
    statements.clear()
    assert await threads.whose("C1", "1.000100") == "ours"
    assert await threads.whose("C1", "1.000100") == "ours"
    assert len(statements) == 2  # one lookup: the owned threads asked for, and recent markers


async def test_foreign_is_remembered_for_a_while_then_asked_again(engine: AsyncEngine, statements: list[str]) -> None:
    await root(engine, "run-1", "C1", "1.000100")
    clock = Clock()
    threads = directory(engine, clock)
    assert await threads.whose("C1", "9.000900") == "foreign"
    assert await threads.whose("C2", "1.000100") == "foreign"  # same ts, another channel
    statements.clear()
    clock.now = NOW + FOREIGN_TTL - timedelta(seconds=1)
    assert await threads.whose("C1", "9.000900") == "foreign"
    assert statements == []
    clock.now = NOW + FOREIGN_TTL
    assert await threads.whose("C1", "9.000900") == "foreign"
    assert statements != []  # asked again


async def test_a_thread_another_replica_makes_the_bridges_is_found_once_foreign_expires(engine: AsyncEngine) -> None:
    clock = Clock()
    threads = directory(engine, clock)
    assert await threads.whose("C1", "5.000500") == "foreign"
    # Elsewhere: a run created with Slack metadata naming that thread is placed there.
    await started_placement(engine, "run-api", "C1", "5.000500")
    clock.now = NOW + FOREIGN_TTL
    assert await threads.whose("C1", "5.000500") == "ours"


async def test_a_mention_stored_on_one_replica_makes_its_thread_ours_on_another(engine: AsyncEngine) -> None:
    # The thread is recorded with the mention's inbox row, before any run or placement exists.
    async with engine.begin() as conn:
        await slack_started.record_requests(conn, [("C1", "7.000700")], NOW)
    assert await directory(engine).whose("C1", "7.000700") == "ours"


async def test_a_thread_this_process_makes_the_bridges_is_ours_at_once(engine: AsyncEngine) -> None:
    threads = directory(engine)
    assert await threads.whose("C1", "8.000800") == "foreign"
    threads.learn("C1", "8.000800")
    assert await threads.whose("C1", "8.000800") == "ours"


async def test_a_recent_marker_in_the_channel_means_maybe_and_is_asked_again(engine: AsyncEngine) -> None:
    await marker(engine, "run-1", "C1", NOW - timedelta(seconds=5))
    threads = directory(engine)
    assert await threads.whose("C1", "5.000500") == "maybe"
    assert await threads.whose("C2", "5.000500") == "foreign"
    async with engine.begin() as conn:
        await slack_threads.record_root(conn, "run-1", "C1", channel_id="C1", ts="5.000500", shown_updated_at=None)
    assert await threads.whose("C1", "5.000500") == "ours"


async def test_a_marker_without_a_channel_id_makes_every_channel_maybe(engine: AsyncEngine) -> None:
    await marker(engine, "run-1", None)
    assert await directory(engine).whose("C7", "5.000500") == "maybe"


async def test_a_stale_marker_is_a_failed_post_not_a_root_on_its_way(engine: AsyncEngine) -> None:
    await marker(engine, "run-1", "C1", NOW - MARKER_WINDOW - timedelta(seconds=1))
    assert await directory(engine).whose("C1", "5.000500") == "foreign"


async def test_concurrent_questions_share_one_lookup(engine: AsyncEngine, statements: list[str]) -> None:
    await root(engine, "run-1", "C1", "1.000100")
    threads = directory(engine)
    statements.clear()
    keys = [("C1", "1.000100")] + [("C1", f"{n}.000000") for n in range(2, 40)]
    answers = await asyncio.gather(*(threads.whose(*key) for key in keys))
    assert answers[0] == "ours"
    assert set(answers[1:]) == {"foreign"}
    assert len(statements) <= 6  # at most two lookups (the first caller's, then everyone else's)
