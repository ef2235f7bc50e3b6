"""A local stand-in for Warp's Oz REST API, shaped by the official SDK types.

In process::

    sim = Simulator(api_key="k")
    async with running_simulator(sim) as url:
        client = AsyncOzAPI(api_key="k", base_url=f"{url}/api/v1")

Out of process: ``python -m bridge.sim --port 8765 --api-key k``.
"""

from .clock import Clock, SimClock, format_ts, parse_ts
from .errors import SimError
from .faults import Fault
from .records import CancelRecord, FollowupRecord, RequestRecord
from .scenario import DEMO_EXPECTED, DEMO_SCENARIO, play
from .server import DEFAULT_BASE_PATH, build_app, running_simulator
from .state import Simulator

__all__ = [
    "DEFAULT_BASE_PATH",
    "DEMO_EXPECTED",
    "DEMO_SCENARIO",
    "CancelRecord",
    "Clock",
    "Fault",
    "FollowupRecord",
    "RequestRecord",
    "SimClock",
    "SimError",
    "Simulator",
    "build_app",
    "format_ts",
    "parse_ts",
    "play",
    "running_simulator",
]
