"""Property: whatever happens between polls, and however the API pages it, each change is told once.

Random histories of several runs are played against the simulator (ties on
``updated_at`` across runs included) while the real poller reads them with a
random page size and its sweeps; the outbox must then hold, per run, one
``run.created``, a chain of state events without repeats that ends in the
run's final state, and each artifact exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.diff import artifact_key
from bridge.metrics import Metrics
from bridge.oz import build_client
from bridge.poller import Poller
from bridge.settings import OzSettings, PollSettings, RouteSettings
from bridge.sim import SimClock, Simulator, running_simulator
from bridge.store import outbox
from bridge.store.engine import create_engine, migrate

STATES = ["QUEUED", "PENDING", "INPROGRESS", "BLOCKED", "SUCCEEDED", "FAILED", "ERROR"]
T0 = datetime(2026, 3, 1, tzinfo=UTC)

operations = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from([0.0, 0.001])),
        st.tuples(st.just("state"), st.integers(0, 3), st.sampled_from(STATES)),
        st.tuples(st.just("artifact"), st.integers(0, 3)),
        st.tuples(st.just("wait"), st.sampled_from([0.0, 0.5, 3.0, 20.0])),
        st.tuples(st.just("poll")),
    ),
    min_size=1,
    max_size=30,
)


async def play(ops: list[tuple[Any, ...]], page_size: int, workdir: Path) -> tuple[Simulator, list[Any]]:
    sim = Simulator(api_key="k", clock=SimClock(frozen_at=T0))
    engine = create_engine(f"sqlite:///{workdir / 'p.db'}")
    await migrate(engine)
    async with running_simulator(sim) as url:
        client = build_client(OzSettings(api_key="k", base_url=f"{url}/api/v1"))  # type: ignore[arg-type]
        poll = PollSettings(interval=1, lookback=10, sweep=5, page_size=page_size)
        poller = Poller(
            engine, client, poll, [RouteSettings(name="a", events=["*"], to=["t"])], Metrics(), clock=sim.now
        )
        await poller.prepare()
        sim.clock.advance(0.001)  # the history starts after the start point, as the contract counts
        runs: list[str] = []
        for op in ops:
            clock: SimClock = sim.clock  # type: ignore[assignment]
            if op[0] == "create":
                clock.advance(op[1])  # 0 makes a tie with the previous change of another run
                runs.append(sim.create_run()["run_id"])
            elif op[0] == "state" and runs:
                clock.advance(0.000001)
                sim.update_run(runs[op[1] % len(runs)], state=op[2])
            elif op[0] == "artifact" and runs:
                clock.advance(0.000001)
                sim.add_artifact(runs[op[1] % len(runs)], "PULL_REQUEST")
            elif op[0] == "wait":
                clock.advance(op[2] if len(op) > 2 else op[1])
            elif op[0] == "poll":
                assert await poller.tick() is None
        for _ in range(2):  # the bridge keeps polling: a sweep, then an ordinary tick
            sim.clock.advance(30)  # type: ignore[attr-defined]
            assert await poller.tick() is None
        async with engine.connect() as conn:
            rows = [row for run_id in runs for row in await outbox.rows_for_run(conn, run_id)]
        await client.close()
    await engine.dispose()
    return sim, rows


@settings(max_examples=40, deadline=None)
@given(ops=operations, page_size=st.integers(1, 3))
def test_every_change_is_told_exactly_once_and_the_end_state_is_reached(
    ops: list[tuple[Any, ...]], page_size: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sim, rows = asyncio.run(play(ops, page_size, Path(tmp)))
    assert len({row.event_id for row in rows}) == len(rows)
    for run_id in sim.run_ids():
        events = [row.payload for row in rows if row.run_id == run_id]
        truth = sim.get_run(run_id)
        assert [e["type"] for e in events].count("run.created") == 1
        states = [e for e in events if e["type"].startswith("run.") and e["type"] != "run.created"]
        assert states[0]["previous_state"] is None
        for before, after in itertools.pairwise(states):
            assert after["previous_state"] == before["run"]["state"] != after["run"]["state"]
        assert states[-1]["run"]["state"] == truth["state"]
        told = sorted(artifact_key(e["artifact"]) for e in events if e["type"].startswith("artifact."))
        assert told == sorted(artifact_key(a) for a in truth.get("artifacts") or [])
