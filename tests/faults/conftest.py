"""The fault suite: the real ``oz-bridge run`` against hostile APIs, receivers, clients and crashes.

Every test here carries the ``faults`` marker (``pytest -m faults`` runs only them).
The short variants run with the default test command; ``--soak`` (or ``OZ_BRIDGE_SOAK=1``)
switches on the long ones.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.faults)
