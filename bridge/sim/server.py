"""Assembling the aiohttp application and serving it on an ephemeral port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from .api import BASE_PATH_KEY, SIM_KEY, add_api_routes, api_middleware
from .control import add_control_routes
from .run_knobs import add_run_knob_routes
from .state import Simulator

__all__ = ["DEFAULT_BASE_PATH", "build_app", "running_simulator"]

DEFAULT_BASE_PATH = "/api/v1"


def build_app(sim: Simulator, *, base_path: str = DEFAULT_BASE_PATH) -> web.Application:
    """The Oz API under ``base_path`` plus the ``/_sim/`` control routes."""
    base = "/" + base_path.strip("/") if base_path.strip("/") else ""
    app = web.Application(middlewares=[api_middleware])
    app[SIM_KEY] = sim
    app[BASE_PATH_KEY] = base
    add_api_routes(app, base)
    add_control_routes(app)
    add_run_knob_routes(app)
    return app


@asynccontextmanager
async def running_simulator(
    sim: Simulator | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    base_path: str = DEFAULT_BASE_PATH,
) -> AsyncIterator[str]:
    """Serve ``sim`` and yield the root URL (``http://127.0.0.1:PORT``).

    The SDK's ``base_url`` is the root URL plus ``base_path``.
    """
    runner = web.AppRunner(build_app(sim or Simulator(), base_path=base_path), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        yield f"http://{bound_host}:{bound_port}"
    finally:
        await runner.cleanup()
