"""Shared fixtures: a migrated database per test, and sample runs shaped like the SDK's RunItem."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.sim import Simulator, running_simulator
from bridge.store.engine import create_engine, migrate


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="run the long soak variants of the fault suite")


def soak_enabled(config: pytest.Config) -> bool:
    """Long variants (minutes each) run only when asked: ``--soak`` or ``OZ_BRIDGE_SOAK=1``."""
    return bool(config.getoption("--soak")) or os.environ.get("OZ_BRIDGE_SOAK") == "1"


@pytest.fixture
def soak(request: pytest.FixtureRequest) -> bool:
    return soak_enabled(request.config)


def make_run(
    run_id: str = "run-1", state: str = "QUEUED", updated_at: str = "2026-01-01T00:00:10Z", **extra: Any
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "task_id": run_id,
        "title": f"Title of {run_id}",
        "prompt": "Do the thing",
        "state": state,
        "created_at": extra.pop("created_at", "2026-01-01T00:00:05Z"),
        "updated_at": updated_at,
        "artifacts": extra.pop("artifacts", []),
        **extra,
    }


def pr_artifact(
    url: str = "https://github.com/acme/shop/pull/1", created_at: str = "2026-01-01T00:00:08Z"
) -> dict[str, Any]:
    return {"artifact_type": "PULL_REQUEST", "created_at": created_at, "data": {"url": url, "branch": "fix"}}


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    db = create_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    await migrate(db)
    yield db
    await db.dispose()


@pytest.fixture
def sim_api_key() -> str:
    """The key the simulator expects; a directory's conftest may override it."""
    return "sim-key"


@pytest.fixture
def sim(sim_api_key: str) -> Simulator:
    return Simulator(api_key=sim_api_key)


@pytest.fixture
async def sim_url(sim: Simulator) -> AsyncIterator[str]:
    async with running_simulator(sim) as url:
        yield url
