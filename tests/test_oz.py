"""Reading pages of GET /agent/runs: one JSON parse per page, untrusted, and paging that always ends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from oz_agent_sdk import AsyncOzAPI

from bridge.api_time import ApiClock
from bridge.oz import CursorRepeated, UnreadableAnswer, pages, parse_page
from bridge.sim import SimClock, Simulator
from tests.polling import NOW, sdk_client

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_page_keeps_every_entry_as_sent_and_says_where_to_go_next() -> None:
    raw = b'{"runs": [{"run_id": "r", "future_field": [1]}, 7], '
    raw += b'"page_info": {"has_next_page": true, "next_cursor": "c2"}}'
    page = parse_page(raw, AT)
    assert page.entries == [{"run_id": "r", "future_field": [1]}, 7]  # entries are judged later, one by one
    assert (page.next_cursor, page.answered_at, page.size) == ("c2", AT, len(raw))


@pytest.mark.parametrize(
    ("page_info", "next_cursor"),
    [
        ({"has_next_page": False, "next_cursor": "c2"}, None),  # as the SDK pages: has_next_page false stops
        ({"has_next_page": True, "next_cursor": ""}, None),
        ({"next_cursor": "c2"}, "c2"),
        (None, None),
        ("junk", None),
    ],
)
def test_the_next_cursor_follows_the_sdks_paging_rules(page_info: object, next_cursor: str | None) -> None:
    assert parse_page(json.dumps({"runs": [], "page_info": page_info}).encode(), AT).next_cursor == next_cursor


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        (b'{"runs": [{"run_id": "', "not JSON"),
        (b'{"data": [], "has_more": false}', "no runs list"),
        (b'{"runs": {"r1": {}}}', "no runs list"),
        (b"[1, 2]", "no runs list"),
        (b'{"runs": [], "page_info": {"next_cursor": 12}}', "next_cursor"),
        (b"[" * 100_000, "not JSON"),
    ],
)
def test_an_answer_that_is_not_a_page_of_runs_is_unreadable_with_a_reason(raw: bytes, says: str) -> None:
    with pytest.raises(UnreadableAnswer, match=says):
        parse_page(raw, AT)


@pytest.fixture
def sim() -> Simulator:
    return Simulator(api_key="k", clock=SimClock(frozen_at=NOW))


@pytest.fixture
async def oz(sim: Simulator) -> AsyncIterator[AsyncOzAPI]:
    async with sdk_client(sim) as client:
        yield client


async def test_paging_follows_cursors_to_the_end_and_learns_the_apis_time(sim: Simulator, oz: AsyncOzAPI) -> None:
    for i in range(5):
        sim.create_run(run_id=f"r{i}")
    clock = ApiClock(lambda: NOW + timedelta(minutes=5))  # this machine runs five minutes fast
    read = [page async for page in pages(oz, {"limit": 2, "sort_order": "asc"}, clock, max_pages=10)]
    assert [[e["run_id"] for e in page.entries] for page in read] == [["r0", "r1"], ["r2", "r3"], ["r4"]]
    assert all(page.answered_at == NOW for page in read)
    assert clock.skew_seconds is not None and round(clock.skew_seconds) == -300


async def test_paging_stops_at_a_repeated_cursor_after_yielding_what_it_read(sim: Simulator, oz: AsyncOzAPI) -> None:
    for i in range(5):
        sim.create_run(run_id=f"r{i}")
    sim.inject_fault(mutate="repeat_cursor", count=1000)
    read = []
    with pytest.raises(CursorRepeated, match="after 2 pages"):
        async for page in pages(oz, {"limit": 2, "sort_order": "asc"}, ApiClock(sim.now), max_pages=100):
            read.append([e["run_id"] for e in page.entries])
    assert read == [["r0", "r1"], ["r2", "r3"]]


async def test_paging_is_bounded(sim: Simulator, oz: AsyncOzAPI) -> None:
    for i in range(5):
        sim.create_run(run_id=f"r{i}")
    asked = []
    read = [
        p async for p in pages(oz, {"limit": 1}, ApiClock(sim.now), max_pages=3, on_request=lambda: asked.append(1))
    ]
    assert len(read) == len(asked) == 3 and read[-1].next_cursor is not None
