"""Helpers for the poller tests: the real poller, the real SDK and the simulator over HTTP, one tick at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from oz_agent_sdk import AsyncOzAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.metrics import Metrics
from bridge.oz import build_client
from bridge.poller import Poller
from bridge.settings import OzSettings, PollSettings, RouteSettings
from bridge.sim import Simulator, running_simulator
from bridge.store import outbox
from bridge.store import runs as run_store

ROUTES = [RouteSettings(name="all", events=["*"], to=["t"])]
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LIST_PATH = "/api/v1/agent/runs"


@asynccontextmanager
async def sdk_client(sim: Simulator) -> AsyncIterator[AsyncOzAPI]:
    async with running_simulator(sim) as url:
        client = build_client(OzSettings(api_key=sim.api_key, base_url=f"{url}/api/v1"))  # type: ignore[arg-type]
        try:
            yield client
        finally:
            await client.close()


def make_poller(
    engine: AsyncEngine,
    oz: AsyncOzAPI,
    sim: Simulator,
    routes: list[RouteSettings] | None = None,
    metrics: Metrics | None = None,
    **poll: object,
) -> Poller:
    settings = PollSettings.model_validate({"interval": 1, "lookback": 30, "sweep": 60, **poll})
    return Poller(engine, oz, settings, routes or ROUTES, metrics or Metrics(), clock=sim.now)


async def queued(engine: AsyncEngine, run_id: str) -> list[tuple[str, str | None]]:
    """(event type, run state in the event) of every outbox row of the run, in order."""
    async with engine.connect() as conn:
        return [(row.event_type, row.payload["run"].get("state")) for row in await outbox.rows_for_run(conn, run_id)]


async def queued_types(engine: AsyncEngine, run_id: str) -> list[str]:
    return [kind for kind, _ in await queued(engine, run_id)]


async def stored_state(engine: AsyncEngine, run_id: str) -> str | None:
    async with engine.connect() as conn:
        run = await run_store.load_run(conn, run_id)
    return None if run is None else str(run["state"])


async def cursor(engine: AsyncEngine) -> datetime:
    async with engine.connect() as conn:
        state = await run_store.load_poll_state(conn)
    assert state is not None
    return state.cursor


def list_requests(sim: Simulator) -> list[dict[str, list[str]]]:
    return [r.query for r in sim.requests(LIST_PATH) if r.path.endswith("/agent/runs")]


def left_out(metrics: Metrics, reason: str) -> float:
    value = metrics.registry.get_sample_value("oz_bridge_malformed_runs_total", {"reason": reason})
    return value or 0.0
