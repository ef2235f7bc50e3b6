"""``/_sim/`` control routes for runs started, failed, spawned and illustrated (plans, screenshots).

Each mirrors a function of ``creation`` or ``artifact_api``, so an out-of-process
test can do what an in-process one does.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .api import SIM_KEY
from .artifact_api import add_plan, add_screenshot
from .creation import charge, fail_run, refuse_next_runs, spawn_child
from .errors import SimError, problem_response

__all__ = ["add_run_knob_routes"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise SimError(400, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise SimError(400, "request body must be a JSON object")
    return body


def _guarded(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except SimError as err:
            return problem_response(err)
        except KeyError as err:
            return problem_response(SimError(404, str(err).strip("'")))
        except (ValueError, TypeError, binascii.Error) as err:
            return problem_response(SimError(400, str(err)))

    return wrapped


async def _child(request: web.Request) -> web.Response:
    child = spawn_child(request.app[SIM_KEY], request.match_info["run_id"], **await _body(request))
    return web.json_response(child, status=201)


async def _fail(request: web.Request) -> web.Response:
    body = await _body(request)
    return web.json_response(fail_run(request.app[SIM_KEY], request.match_info["run_id"], **body))


async def _usage(request: web.Request) -> web.Response:
    body = await _body(request)
    return web.json_response(charge(request.app[SIM_KEY], request.match_info["run_id"], **body))


async def _plan(request: web.Request) -> web.Response:
    body = await _body(request)
    artifact = add_plan(request.app[SIM_KEY], request.match_info["run_id"], str(body["content"]), body.get("data"))
    return web.json_response(artifact, status=201)


async def _screenshot(request: web.Request) -> web.Response:
    body = await _body(request)
    content = base64.b64decode(body["content_base64"], validate=True) if body.get("content_base64") else None
    extra = {k: body[k] for k in ("mime_type", "description") if body.get(k)}
    sim, run_id = request.app[SIM_KEY], request.match_info["run_id"]
    artifact = add_screenshot(sim, run_id, content, **extra) if content else add_screenshot(sim, run_id, **extra)
    return web.json_response(artifact, status=201)


async def _refusals(request: web.Request) -> web.Response:
    body = await _body(request)
    refuse_next_runs(request.app[SIM_KEY], int(body["status"]), str(body["error_code"]), str(body.get("detail", "")))
    return web.json_response({"refusals": len(request.app[SIM_KEY].run_creation.refusals)}, status=201)


async def _created(request: web.Request) -> web.Response:
    records = request.app[SIM_KEY].run_creation.records
    return web.json_response({"created": [r.to_json() for r in records]})


def add_run_knob_routes(app: web.Application) -> None:
    routes: list[tuple[str, str, Handler]] = [
        ("POST", "/_sim/runs/{run_id}/children", _child),
        ("POST", "/_sim/runs/{run_id}/fail", _fail),
        ("POST", "/_sim/runs/{run_id}/usage", _usage),
        ("POST", "/_sim/runs/{run_id}/plans", _plan),
        ("POST", "/_sim/runs/{run_id}/screenshots", _screenshot),
        ("POST", "/_sim/run-refusals", _refusals),
        ("GET", "/_sim/created-runs", _created),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, _guarded(handler))
