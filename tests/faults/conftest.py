"""The fault suite: the real ``oz-bridge run`` against hostile APIs, receivers, clients and crashes.

Every test here carries the ``faults`` marker (``pytest -m faults`` runs only them).
The short variants run with the default test command; ``--soak`` (or ``OZ_BRIDGE_SOAK=1``)
switches on the long ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.harness import API_KEY
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.faults.api_support import WEBHOOK_SECRET


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def sim_api_key() -> str:
    """The simulator expects the key the real ``oz-bridge run`` is given (``tests/e2e/harness.py``)."""
    return API_KEY


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    """A webhook receiver that checks every Standard Webhooks signature."""
    async with WebhookReceiver(secret=WEBHOOK_SECRET) as hook:
        yield hook
