"""The checking tools (helm, hadolint, …) that scripts/fetch-tools.sh caches outside the repository.

Tests that need one skip with the command that fetches it, except in CI (``CI=true``), where a missing
tool is a failure: .ci/run fetches them first.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = Path(os.environ.get("OZ_BRIDGE_TOOLS_BIN", "/var/cache/oz-bridge/tools/bin"))


def tool(name: str) -> str:
    cached = TOOLS_BIN / name
    found = str(cached) if cached.exists() else shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed: scripts/fetch-tools.sh fetches it into {TOOLS_BIN}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
