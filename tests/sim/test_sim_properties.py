"""Property tests: keyset paging returns every run exactly once, in order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oz_agent_sdk import AsyncOzAPI, DefaultAioHttpClient

from bridge.sim import SimClock, Simulator, format_ts, parse_ts, running_simulator
from bridge.sim.clock import parse_ts_ns, to_ns

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)

# Few distinct timestamps so that ties are the common case, not the exception.
offsets = st.lists(st.integers(min_value=0, max_value=5), min_size=0, max_size=25)


def _populate(offsets_us: list[int]) -> tuple[Simulator, list[tuple[datetime, str]]]:
    clock = SimClock(frozen_at=T0)
    sim = Simulator(api_key="k", clock=clock)
    expected = []
    for i, offset in enumerate(offsets_us):
        clock.set(T0 + timedelta(microseconds=offset))
        run = sim.create_run(run_id=f"run-{i:03d}")
        expected.append((clock.now(), run["run_id"]))
    return sim, sorted(expected)


def _page_all(sim: Simulator, limit: int, order: str) -> list[dict[str, Any]]:
    base = [("sort_by", "updated_at"), ("sort_order", order), ("limit", str(limit))]
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        body = sim.list_runs(base + ([("cursor", cursor)] if cursor else []))
        out += body["runs"]
        cursor = body["page_info"]["next_cursor"]
        if not body["page_info"]["has_next_page"]:
            return out


@given(offsets=offsets, limit=st.integers(min_value=1, max_value=7), order=st.sampled_from(["asc", "desc"]))
def test_paging_in_process_returns_each_run_once_in_order(offsets: list[int], limit: int, order: str) -> None:
    sim, expected = _populate(offsets)
    ids = [r["run_id"] for r in _page_all(sim, limit, order)]
    want = [run_id for _, run_id in expected]
    assert ids == (want if order == "asc" else want[::-1])


@given(
    offsets=offsets,
    limit=st.integers(min_value=1, max_value=5),
    updates=st.lists(st.lists(st.integers(min_value=0, max_value=24), max_size=3), max_size=6),
)
def test_paging_while_runs_change(offsets: list[int], limit: int, updates: list[list[int]]) -> None:
    sim, _ = _populate(offsets)
    clock = sim.clock
    assert isinstance(clock, SimClock)
    base = [("sort_by", "updated_at"), ("sort_order", "asc"), ("limit", str(limit))]
    seen: list[tuple[str, str]] = []
    touched: set[str] = set()
    cursor = None
    for step in range(len(offsets) + len(updates) + 2):
        body = sim.list_runs(base + ([("cursor", cursor)] if cursor else []))
        seen += [(r["updated_at"], r["run_id"]) for r in body["runs"]]
        if not body["page_info"]["has_next_page"]:
            break
        cursor = body["page_info"]["next_cursor"]
        clock.advance(1)  # updates land strictly after everything listed so far
        for index in updates[step] if step < len(updates) else []:
            if index < len(offsets):
                run_id = f"run-{index:03d}"
                sim.update_run(run_id, title=f"changed at step {step}")
                touched.add(run_id)
    positions = [(parse_ts(ts), run_id) for ts, run_id in seen]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    ids = [run_id for _, run_id in seen]
    for i in range(len(offsets)):
        run_id = f"run-{i:03d}"
        # Untouched runs appear exactly once; changed ones at least once, latest version last.
        if run_id in touched:
            assert ids.count(run_id) >= 1
        else:
            assert ids.count(run_id) == 1
        last = max(p for p in positions if p[1] == run_id)
        assert last[0] == parse_ts(sim.get_run(run_id)["updated_at"])


async def _page_through_sdk(sim: Simulator, limit: int) -> list[tuple[datetime, str]]:
    async with running_simulator(sim) as url:
        client = AsyncOzAPI(api_key="k", base_url=f"{url}/api/v1", http_client=DefaultAioHttpClient(), max_retries=0)
        async with client:
            page = await client.agent.runs.list(
                sort_by="updated_at", sort_order="asc", limit=limit, updated_after=T0 - timedelta(seconds=1)
            )
            out = [(r.updated_at, r.run_id) for r in page.runs]
            while page.has_next_page():
                page = await page.get_next_page()
                out += [(r.updated_at, r.run_id) for r in page.runs]
            return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(offsets=offsets, limit=st.integers(min_value=1, max_value=6))
def test_paging_through_the_sdk_returns_each_run_once_in_order(offsets: list[int], limit: int) -> None:
    sim, expected = _populate(offsets)
    assert asyncio.run(_page_through_sdk(sim, limit)) == expected


changes = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from(["QUEUED", "FAILED"]), st.sampled_from([0.0, 0.5, 2.0])),
        st.tuples(st.just("update"), st.integers(0, 9), st.sampled_from(["INPROGRESS", "FAILED"]), st.booleans()),
        st.tuples(st.just("clock"), st.sampled_from([-1.0, 0.0, 0.7, 3.0])),
        st.tuples(st.just("reveal")),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(
    history=changes,
    limit=st.integers(1, 4),
    order=st.sampled_from(["asc", "desc"]),
    after=st.sampled_from([None, 0.0, 1.5]),
    state=st.sampled_from([None, "FAILED"]),
)
def test_the_listing_index_answers_like_filtering_and_sorting_every_visible_run(
    history: list[tuple[Any, ...]], limit: int, order: str, after: float | None, state: str | None
) -> None:
    clock = SimClock(frozen_at=T0)
    sim = Simulator(api_key="k", clock=clock)
    ids: list[str] = []
    for step in history:
        if step[0] == "create":
            clock.advance(0.001)
            ids.append(sim.create_run(run_id=f"run-{len(ids)}", state=step[1], visible_after=step[2] or None)["run_id"])
        elif step[0] == "update" and ids:
            clock.advance(0.001)
            sim.update_run(ids[step[1] % len(ids)], state=step[2], visible_after=1.0 if step[3] else None)
        elif step[0] == "clock":
            clock.advance(step[1])
        elif step[0] == "reveal":
            sim.reveal()
    query = [("sort_by", "updated_at"), ("sort_order", order), ("limit", str(limit))]
    if after is not None:
        query.append(("updated_after", format_ts(T0 + timedelta(seconds=after))))
    if state is not None:
        query.append(("state", state))
    visible = [v for rid in sim.run_ids() if (v := sim.visible_run(rid)) is not None]
    wanted = [
        (parse_ts_ns(v["updated_at"]), v["run_id"])
        for v in visible
        if (state is None or v["state"] == state)
        and (after is None or parse_ts_ns(v["updated_at"]) > to_ns(T0 + timedelta(seconds=after)))
    ]
    wanted.sort(reverse=order == "desc")
    got: list[tuple[int, str]] = []
    cursor = None
    while True:
        body = sim.list_runs(query + ([("cursor", cursor)] if cursor else []))
        got += [(parse_ts_ns(r["updated_at"]), r["run_id"]) for r in body["runs"]]
        if not body["page_info"]["has_next_page"]:
            break
        cursor = body["page_info"]["next_cursor"]
    assert got == wanted
