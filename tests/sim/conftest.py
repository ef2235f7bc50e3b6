"""Fixtures for the Oz simulator tests: a frozen clock, a served simulator, SDK clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from oz_agent_sdk import AsyncOzAPI, DefaultAioHttpClient

from bridge.sim import SimClock, Simulator, running_simulator

API_KEY = "test-key"
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """A point in time ``seconds`` after T0 (microsecond resolution)."""
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def clock() -> SimClock:
    return SimClock(frozen_at=T0)


@pytest.fixture
def sim(clock: SimClock) -> Simulator:
    return Simulator(api_key=API_KEY, clock=clock)


@pytest_asyncio.fixture
async def sim_url(sim: Simulator) -> AsyncIterator[str]:
    async with running_simulator(sim) as url:
        yield url


@pytest_asyncio.fixture
async def make_client(sim_url: str) -> AsyncIterator[Callable[..., AsyncOzAPI]]:
    """Factory for SDK clients wired exactly like the bridge wires its own."""
    clients: list[AsyncOzAPI] = []

    def make(**overrides: Any) -> AsyncOzAPI:
        options: dict[str, Any] = {
            "api_key": API_KEY,
            "base_url": f"{sim_url}/api/v1",
            "http_client": DefaultAioHttpClient(),
            "max_retries": 0,
        }
        options.update(overrides)
        client = AsyncOzAPI(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest_asyncio.fixture
async def client(make_client: Callable[..., AsyncOzAPI]) -> AsyncOzAPI:
    return make_client()


async def _drain(page: Any) -> list[list[Any]]:
    pages = [list(page.runs)]
    while page.has_next_page():
        page = await page.get_next_page()
        pages.append(list(page.runs))
    return pages


@pytest.fixture
def drain() -> Callable[[Any], Any]:
    """``await drain(first_page)`` -> every page's runs, following cursors to the end."""
    return _drain
