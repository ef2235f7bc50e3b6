"""Inbound Slack fixtures: the simulator and fake Slack served, and a factory of harnesses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from oz_agent_sdk import AsyncOzAPI
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbound import Inbound, WorkerSettings, build_inbound
from bridge.metrics import Metrics
from bridge.notifiers.slack import SlackContext
from bridge.sim import Simulator
from bridge.web import SERVER_OPTIONS, build_web_app
from tests.fakes.slack_api import FakeSlack
from tests.inbound.harness import (
    API_KEY,
    APP_TOKEN,
    BOT_TOKEN,
    FAST,
    Harness,
    HarnessFactory,
    always_ready,
    make_settings,
    no_metrics,
)


@pytest.fixture
def sim_api_key() -> str:
    return API_KEY


@pytest.fixture
async def oz(sim_url: str) -> AsyncIterator[AsyncOzAPI]:
    client = AsyncOzAPI(api_key=API_KEY, base_url=f"{sim_url}/api/v1", max_retries=0, timeout=5)
    yield client
    await client.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=BOT_TOKEN, app_token=APP_TOKEN) as slack_api:
        yield slack_api


@pytest.fixture
def slack(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url)


@pytest.fixture
async def make_harness(
    tmp_path: Path,
    sim: Simulator,
    fake: FakeSlack,
    slack: AsyncWebClient,
    oz: AsyncOzAPI,
    engine: AsyncEngine,
    aiohttp_client: Any,
) -> AsyncIterator[HarnessFactory]:
    started: list[Inbound] = []
    contexts: list[SlackContext] = []

    async def make(
        worker: WorkerSettings = FAST,
        start: bool = False,
        slack_start: dict[str, Any] | None = None,
        **slack_settings: Any,
    ) -> Harness:
        """``start``: run the inbox worker; ``slack_start``: the ``slack.start`` settings (mentions start runs)."""
        if slack_start is not None:
            slack_settings["start"] = slack_start
        metrics = Metrics()
        settings = make_settings(tmp_path, api_url=fake.api_url, **slack_settings)
        context = SlackContext(settings.slack, engine, metrics, oz)
        contexts.append(context)
        inbound = build_inbound(settings, engine, oz, context, metrics, worker_settings=worker)
        app = build_web_app(always_ready, no_metrics, extra_routes=inbound.routes())
        server = TestServer(app)
        await server.start_server(**SERVER_OPTIONS)  # as oz-bridge run serves it: bodies as received
        client = await aiohttp_client(server)
        if start:
            await inbound.start()
            started.append(inbound)
        return Harness(sim, fake, slack, engine, inbound, client, metrics)

    yield make
    for inbound in started:
        await inbound.stop()
    for context in contexts:
        await context.close()


@pytest.fixture
async def harness(make_harness: HarnessFactory) -> Harness:
    return await make_harness()
