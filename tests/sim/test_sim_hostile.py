"""Hostile listings over real HTTP: well-formed answers whose content a client must not trust."""

from __future__ import annotations

import json
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest
from oz_agent_sdk import AsyncOzAPI

from bridge.sim import SimClock, Simulator
from bridge.sim.hostile import FAR_FUTURE
from tests.sim.conftest import API_KEY

LIST = "/api/v1/agent/runs"


async def listing(sim_url: str, **params: str) -> Any:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession() as http, http.get(sim_url + LIST, params=params, headers=headers) as resp:
        assert resp.status == 200
        return json.loads(await resp.read())


@pytest.mark.parametrize("junk", [None, "not an artifact", 7, ["nested"]])
async def test_artifact_not_object_appends_junk_to_the_targeted_run_only(
    sim: Simulator, sim_url: str, junk: Any
) -> None:
    sim.create_run(run_id="r1")
    sim.create_run(run_id="r2")
    sim.inject_fault(mutate="artifact_not_object", run_id="r1", value=junk)
    body = await listing(sim_url, sort_order="asc")
    assert {r["run_id"]: r["artifacts"] for r in body["runs"]} == {"r1": [junk], "r2": []}
    assert sim.get_run("r1")["artifacts"] == []  # the state itself is untouched
    assert (await listing(sim_url))["runs"][0]["artifacts"] == []  # one request only


@pytest.mark.parametrize("junk", [42, "run", None, [1, 2]])
async def test_run_not_object_puts_a_junk_entry_first(sim: Simulator, sim_url: str, junk: Any) -> None:
    sim.create_run(run_id="r1")
    sim.inject_fault(mutate="run_not_object", value=junk)
    body = await listing(sim_url)
    assert body["runs"][0] == junk and body["runs"][1]["run_id"] == "r1"


async def test_run_not_object_defaults_to_a_number(sim: Simulator, sim_url: str) -> None:
    sim.inject_fault(mutate="run_not_object")
    assert (await listing(sim_url))["runs"] == [42]


async def test_future_updated_at_rewrites_the_timestamp(sim: Simulator, sim_url: str) -> None:
    sim.create_run(run_id="r1")
    sim.inject_fault(mutate="future_updated_at", run_id="r1")
    assert (await listing(sim_url))["runs"][0]["updated_at"] == FAR_FUTURE


async def test_duplicate_stale_puts_an_older_copy_before_the_run(sim: Simulator, sim_url: str) -> None:
    sim.create_run(run_id="r1", state="SUCCEEDED", updated_at="2025-03-01T12:00:10Z")
    sim.inject_fault(mutate="duplicate_stale", run_id="r1", patch={"state": "INPROGRESS"})
    runs = (await listing(sim_url))["runs"]
    assert [(r["run_id"], r["state"], r["updated_at"]) for r in runs] == [
        ("r1", "INPROGRESS", "2025-03-01T12:00:09Z"),
        ("r1", "SUCCEEDED", "2025-03-01T12:00:10Z"),
    ]


async def test_repeat_cursor_sends_the_client_round_in_a_circle(sim: Simulator, sim_url: str) -> None:
    for i in range(3):
        sim.create_run(run_id=f"r{i}")
    sim.inject_fault(mutate="repeat_cursor", count=100)
    first = await listing(sim_url, sort_order="asc", limit="1")
    cursor = first["page_info"]["next_cursor"]
    second = await listing(sim_url, sort_order="asc", limit="1", cursor=cursor)
    third = await listing(sim_url, sort_order="asc", limit="1", cursor=second["page_info"]["next_cursor"])
    assert second["page_info"] == third["page_info"] == {"has_next_page": True, "next_cursor": cursor}
    assert second["runs"] == third["runs"]


async def test_mutations_only_apply_to_the_listing(sim: Simulator, client: AsyncOzAPI) -> None:
    sim.create_run(run_id="r1")
    sim.inject_fault(mutate="future_updated_at")
    assert (await client.agent.runs.retrieve("r1")).updated_at.year == 2025
    assert len(sim.faults.pending()) == 1


async def test_cut_sends_half_of_the_genuine_answer(sim: Simulator, sim_url: str) -> None:
    sim.create_run(run_id="r1")
    sim.inject_fault(malformed="cut")
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession() as http, http.get(sim_url + LIST, headers=headers) as resp:
        raw = await resp.read()
    whole = json.dumps(sim.list_runs({})).encode()
    assert resp.status == 200 and raw == whole[: len(whole) // 2]


async def test_date_header_is_the_simulated_clock(sim: Simulator, clock: SimClock, sim_url: str) -> None:
    clock.advance(-600)  # the API ten minutes behind the machine
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession() as http, http.get(sim_url + LIST, headers=headers) as resp:
        assert parsedate_to_datetime(resp.headers["Date"]) == clock.now().replace(microsecond=0)


def test_rate_hits_a_seeded_share_of_matching_requests() -> None:
    sim = Simulator()
    sim.inject_fault(500, count=1000, rate=0.25)
    hits = sum(sim.faults.take("GET", "/api/v1/agent/runs", "/agent/runs") is not None for _ in range(400))
    assert 60 <= hits <= 140
    again = Simulator()
    again.inject_fault(500, count=1000, rate=0.25)
    assert hits == sum(again.faults.take("GET", "/x", "/x") is not None for _ in range(400))


def test_mutation_validation() -> None:
    with pytest.raises(ValueError):
        Simulator().inject_fault(mutate="sideways")
    with pytest.raises(ValueError):
        Simulator().inject_fault(500, rate=0)
