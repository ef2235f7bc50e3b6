"""End-to-end fixtures: the Oz simulator and a signature-checking receiver, both over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import API_KEY, BridgeProcess, fast_config
from tests.fakes.webhook_receiver import WebhookReceiver

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def sim_api_key() -> str:
    return API_KEY


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(secret=WEBHOOK_SECRET) as hook:
        yield hook


@pytest.fixture
async def bridges(tmp_path: Path, sim_url: str) -> AsyncIterator[Callable[..., BridgeProcess]]:
    started: list[BridgeProcess] = []

    def make(config: dict[str, Any], **env: str) -> BridgeProcess:
        bridge = BridgeProcess(tmp_path, sim_url, config, extra_env=env)
        started.append(bridge)
        return bridge

    yield make
    for bridge in started:
        if bridge.proc is not None and bridge.proc.returncode is None:
            await bridge.kill()


@pytest.fixture
def webhook_config(receiver: WebhookReceiver) -> Callable[..., dict[str, Any]]:
    def config(**poll: Any) -> dict[str, Any]:
        targets = {"audit": {"type": "webhook", "url": receiver.url, "secret": WEBHOOK_SECRET, "timeout": 2}}
        return fast_config(targets, [{"name": "all", "events": ["*"], "to": ["audit"]}], **poll)

    return config


@pytest.fixture
async def bridge(bridges: Callable[..., BridgeProcess], webhook_config: Callable[..., dict[str, Any]]) -> BridgeProcess:
    """A started bridge on the default fast config, delivering everything to the receiver."""
    started = bridges(webhook_config())
    await started.start()
    return started
