"""Listing and keyset pagination, driven through the official SDK over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import oz_agent_sdk
import pytest
from oz_agent_sdk import AsyncOzAPI

from bridge.sim import SimClock, Simulator

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def _ids(pages: list[list[Any]]) -> list[str]:
    return [run.run_id for page in pages for run in page]


async def test_ties_on_updated_at_page_in_run_id_order(sim: Simulator, client: AsyncOzAPI, drain: Any) -> None:
    for i in (3, 1, 4, 0, 2):
        sim.create_run(run_id=f"run-{i}", title=f"tied {i}")
    first = await client.agent.runs.list(sort_by="updated_at", sort_order="asc", limit=2)
    pages = await drain(first)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert _ids(pages) == [f"run-{i}" for i in range(5)]
    assert {run.updated_at for page in pages for run in page} == {T0}


async def test_run_updated_between_pages_moves_to_end_without_skips(
    sim: Simulator, clock: SimClock, client: AsyncOzAPI
) -> None:
    for i in range(1, 7):
        clock.set(T0 + timedelta(seconds=i))
        sim.create_run(run_id=f"run-{i}")
    page = await client.agent.runs.list(sort_by="updated_at", sort_order="asc", limit=2)
    seen = [(r.run_id, r.updated_at) for r in page.runs]
    assert [s[0] for s in seen] == ["run-1", "run-2"]

    clock.set(T0 + timedelta(seconds=10))
    for run_id in ("run-1", "run-2", "run-4"):  # seen, the cursor's own row, and unseen
        sim.update_run(run_id, state="INPROGRESS")
    while page.has_next_page():
        page = await page.get_next_page()
        seen += [(r.run_id, r.updated_at) for r in page.runs]

    assert [s[0] for s in seen] == ["run-1", "run-2", "run-3", "run-5", "run-6", "run-1", "run-2", "run-4"]
    later = T0 + timedelta(seconds=10)
    assert seen[-3:] == [("run-1", later), ("run-2", later), ("run-4", later)]


async def test_updated_after_is_strict(sim: Simulator, clock: SimClock, client: AsyncOzAPI) -> None:
    clock.set(T0)
    sim.create_run(run_id="early")
    clock.set(T0 + timedelta(microseconds=1))
    sim.create_run(run_id="tie-a")
    sim.create_run(run_id="tie-b")
    clock.set(T0 + timedelta(seconds=1))
    sim.create_run(run_id="late")

    async def after(value: Any) -> list[str]:
        page = await client.agent.runs.list(sort_order="asc", updated_after=value)
        return [r.run_id for r in page.runs]

    assert await after(T0) == ["tie-a", "tie-b", "late"]
    assert await after(T0 + timedelta(microseconds=1)) == ["late"]
    assert await after("2025-03-01T12:00:00.000001Z") == ["late"]
    assert await after("2025-03-01T13:00:00.000000500+01:00") == ["tie-a", "tie-b", "late"]
    assert await after(T0 + timedelta(seconds=1)) == []


async def test_default_order_is_updated_at_desc(sim: Simulator, clock: SimClock, client: AsyncOzAPI) -> None:
    for i in range(3):
        clock.set(T0 + timedelta(seconds=i))
        sim.create_run(run_id=f"run-{i}")
    page = await client.agent.runs.list()
    assert [r.run_id for r in page.runs] == ["run-2", "run-1", "run-0"]
    assert page.page_info is not None
    assert page.page_info.has_next_page is False
    assert page.page_info.next_cursor is None


async def test_desc_pagination_with_ties(sim: Simulator, client: AsyncOzAPI, drain: Any) -> None:
    for i in range(5):
        sim.create_run(run_id=f"run-{i}")
    pages = await drain(await client.agent.runs.list(sort_order="desc", limit=2))
    assert _ids(pages) == [f"run-{i}" for i in reversed(range(5))]


async def test_sort_by_title_and_agent(sim: Simulator, client: AsyncOzAPI, drain: Any) -> None:
    sim.create_run(run_id="a", title="banana", agent_config={"skill_spec": "acme/x:b/SKILL.md"})
    sim.create_run(run_id="b", title="Apple")
    sim.create_run(run_id="c", title="cherry", agent_config={"skill_spec": "acme/x:a/SKILL.md"})
    by_title = await drain(await client.agent.runs.list(sort_by="title", sort_order="asc", limit=1))
    assert _ids(by_title) == ["b", "a", "c"]
    by_agent_asc = await drain(await client.agent.runs.list(sort_by="agent", sort_order="asc", limit=1))
    assert _ids(by_agent_asc) == ["c", "a", "b"]
    by_agent_desc = await drain(await client.agent.runs.list(sort_by="agent", sort_order="desc", limit=2))
    assert _ids(by_agent_desc) == ["a", "c", "b"]  # runs without a skill stay last


async def test_sort_by_created_at(sim: Simulator, clock: SimClock, client: AsyncOzAPI, drain: Any) -> None:
    for i in range(3):
        clock.set(T0 + timedelta(seconds=i))
        sim.create_run(run_id=f"run-{i}")
    clock.set(T0 + timedelta(seconds=9))
    sim.update_run("run-0", state="INPROGRESS")
    pages = await drain(await client.agent.runs.list(sort_by="created_at", sort_order="asc", limit=2))
    assert _ids(pages) == ["run-0", "run-1", "run-2"]


async def test_repeated_state_filter_matches_any(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.create_run(run_id="failed", state="FAILED")
    sim.create_run(run_id="blocked", state="BLOCKED")
    sim.create_run(run_id="queued")
    page = await client.agent.runs.list(state=["FAILED", "BLOCKED"], sort_order="asc")
    assert sorted(r.run_id for r in page.runs) == ["blocked", "failed"]
    # The SDK repeats the key (state=FAILED&state=BLOCKED), never comma-joins it.
    assert sim.requests()[-1].query["state"] == ["FAILED", "BLOCKED"]


async def test_metadata_filter_uses_bracket_keys_and_and_semantics(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.create_run(run_id="both", metadata={"ticket_id": "VIS-238", "team": "web"})
    sim.create_run(run_id="one", metadata={"ticket_id": "VIS-238"})
    page = await client.agent.runs.list(metadata={"ticket_id": "VIS-238", "team": "web"})
    assert [r.run_id for r in page.runs] == ["both"]
    assert sim.requests()[-1].query["metadata[ticket_id]"] == ["VIS-238"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"source": "SLACK"}, {"slack"}),
        ({"name": "nightly"}, {"env"}),
        ({"creator": "u-2"}, {"slack"}),
        ({"executor": "agent-7"}, {"slack"}),
        ({"environment_id": "EnvAAAAAAAAAAAAAAAAAA1"}, {"env"}),
        ({"environment_id": "empty-environment"}, {"slack", "child", "grandchild", "skill"}),
        ({"skill_spec": "acme/repo:skills/x/SKILL.md"}, {"skill"}),
        ({"skill": "acme/repo:skills/x/SKILL.md"}, {"skill"}),
        ({"artifact_type": "PULL_REQUEST"}, {"env"}),
        ({"execution_location": "LOCAL"}, {"child"}),
        ({"schedule_id": "sched-1"}, {"env"}),
        ({"ancestor_run_id": "env"}, {"child", "grandchild"}),
        ({"q": "DEPENDENCY"}, {"env"}),
        ({"q": "skills/x"}, {"skill"}),
        ({"source": "SLACK", "creator": "nobody"}, set()),
    ],
)
async def test_filters(sim: Simulator, client: AsyncOzAPI, params: dict[str, Any], expected: set[str]) -> None:
    sim.create_run(
        run_id="env",
        title="Nightly dependency bump",
        agent_config={"name": "nightly", "environment_id": "EnvAAAAAAAAAAAAAAAAAA1"},
        schedule={"cron_schedule": "0 2 * * *", "schedule_id": "sched-1", "schedule_name": "nightly"},
        add_artifact={"artifact_type": "PULL_REQUEST"},
    )
    sim.create_run(
        run_id="slack",
        source="SLACK",
        creator={"uid": "u-2", "type": "user"},
        executor={"uid": "agent-7", "type": "service_account"},
    )
    sim.create_run(run_id="child", parent_run_id="env", execution_location="LOCAL")
    sim.create_run(run_id="grandchild", parent_run_id="child")
    sim.create_run(run_id="skill", agent_config={"skill_spec": "acme/repo:skills/x/SKILL.md"})
    page = await client.agent.runs.list(**params, limit=100)
    assert {r.run_id for r in page.runs} == expected


async def test_created_after_and_before_are_strict(sim: Simulator, clock: SimClock, client: AsyncOzAPI) -> None:
    for i in range(4):
        clock.set(T0 + timedelta(seconds=i))
        sim.create_run(run_id=f"run-{i}")
    page = await client.agent.runs.list(
        created_after=T0 + timedelta(seconds=0), created_before=T0 + timedelta(seconds=3), sort_order="asc"
    )
    assert [r.run_id for r in page.runs] == ["run-1", "run-2"]


async def test_cursor_survives_changing_limit(sim: Simulator, client: AsyncOzAPI) -> None:
    for i in range(5):
        sim.create_run(run_id=f"run-{i}")
    first = await client.agent.runs.list(sort_order="asc", limit=2)
    assert first.page_info is not None and first.page_info.next_cursor
    rest = await client.agent.runs.list(sort_order="asc", limit=10, cursor=first.page_info.next_cursor)
    assert [r.run_id for r in rest.runs] == ["run-2", "run-3", "run-4"]


@pytest.mark.parametrize(
    "params",
    [
        {"updated_after": "yesterday"},
        {"updated_after": "2025-03-01T12:00:00"},  # what isoformat() of a naive datetime gives
        {"created_before": "2025-03-01"},
        {"limit": 0},
        {"limit": 101},
        {"state": ["FAILED,BLOCKED"]},
        {"state": ["DONE"]},
        {"sort_by": "name"},
        {"sort_order": "up"},
        {"source": "EMAIL"},
        {"execution_location": "MOON"},
        {"artifact_type": "VIDEO"},
        {"cursor": "not-a-cursor"},
        {"metadata": {f"k{i}": "v" for i in range(6)}},
    ],
)
async def test_bad_parameters_are_400_with_problem_body(client: AsyncOzAPI, params: dict[str, Any]) -> None:
    with pytest.raises(oz_agent_sdk.BadRequestError) as info:
        await client.agent.runs.list(**params)
    body = info.value.body
    assert isinstance(body, dict)
    assert body["type"] == "https://docs.warp.dev/reference/api-and-sdk/troubleshooting/errors/invalid-request"
    assert body["status"] == 400
    assert body["title"] == "The request contains invalid or missing parameters."
    assert body["detail"] and body["error"] == f"{body['title']} ({body['detail']})"
    assert (body["instance"], body["retryable"]) == ("/api/v1/agent/runs", False)


async def test_limit_query_as_raw_text_is_validated(client: AsyncOzAPI) -> None:
    with pytest.raises(oz_agent_sdk.BadRequestError):
        await client.agent.runs.list(extra_query={"limit": "ten"})


async def test_cursor_from_other_filters_is_rejected(sim: Simulator, client: AsyncOzAPI) -> None:
    for i in range(3):
        sim.create_run(run_id=f"run-{i}", state="FAILED")
    page = await client.agent.runs.list(state=["FAILED"], limit=1)
    assert page.page_info is not None and page.page_info.next_cursor
    with pytest.raises(oz_agent_sdk.BadRequestError, match="cursor"):
        await client.agent.runs.list(limit=1, cursor=page.page_info.next_cursor)
    with pytest.raises(oz_agent_sdk.BadRequestError, match="cursor"):
        tampered = page.page_info.next_cursor[:-2] + ("AA" if not page.page_info.next_cursor.endswith("AA") else "BB")
        await client.agent.runs.list(state=["FAILED"], limit=1, cursor=tampered)


async def test_unknown_params_are_ignored(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.create_run(run_id="only")
    page = await client.agent.runs.list(extra_query={"frobnicate": "yes"})
    assert [r.run_id for r in page.runs] == ["only"]


async def test_factory_uid_matches_runs_executed_by_that_factorys_agents(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.factories = {"f-1": frozenset({"agent-a", "agent-b"}), "f-2": frozenset({"agent-c"})}
    for run_id, executor in [("by-a", "agent-a"), ("by-b", "agent-b"), ("by-c", "agent-c"), ("by-human", "u-1")]:
        sim.create_run(run_id=run_id, executor={"uid": executor, "type": "service_account"})
    sim.create_run(run_id="no-executor")

    async def ids(**params: Any) -> list[str]:
        return sorted(r.run_id for r in (await client.agent.runs.list(**params)).runs)

    assert await ids(factory_uid="f-1") == ["by-a", "by-b"]
    assert await ids(factory_uid="f-2") == ["by-c"]
    assert await ids(factory_uid="f-unknown") == []  # a factory outside the caller's reach matches nothing
    assert len(await ids()) == 5


async def test_auto_pagination_iterates_every_run(sim: Simulator, client: AsyncOzAPI) -> None:
    for i in range(7):
        sim.create_run(run_id=f"run-{i}")
    seen = [run.run_id async for run in client.agent.runs.list(sort_order="asc", limit=3)]
    assert seen == [f"run-{i}" for i in range(7)]
    assert len(sim.requests("/api/v1/agent/runs", "GET")) == 3
