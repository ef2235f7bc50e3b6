"""The unauthenticated ``/_sim/`` control surface for tests and the demo.

Everything here mirrors a ``Simulator`` method so an out-of-process test can
do what an in-process one does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .api import SIM_KEY
from .clock import SimClock, format_ts, parse_ts
from .errors import SimError, problem_response
from .faults import Fault
from .scenario import SCENARIOS, play
from .state import Simulator

__all__ = ["add_control_routes"]

SCENARIO_TASKS = web.AppKey("oz_sim_scenario_tasks", list)  # list[asyncio.Task[dict[str, str]]]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _sim(request: web.Request) -> Simulator:
    return request.app[SIM_KEY]


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise SimError(400, "request body is not valid JSON") from None


async def _object_body(request: web.Request) -> dict[str, Any]:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise SimError(400, "request body must be a JSON object")
    return body


def _guard(handler: Handler) -> Handler:
    """Turn bad input into 400/404 problem bodies instead of 500s."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        run_id = request.match_info.get("run_id")
        try:
            if run_id is not None and run_id not in _sim(request).run_ids():
                raise SimError(404, f"run {run_id} not found")
            return await handler(request)
        except SimError as err:
            return problem_response(err)
        except (ValueError, KeyError, TypeError) as err:
            return problem_response(SimError(400, str(err)))

    return wrapped


async def create_run(request: web.Request) -> web.Response:
    return web.json_response(_sim(request).create_run(**await _object_body(request)), status=201)


async def list_all_runs(request: web.Request) -> web.Response:
    sim = _sim(request)
    return web.json_response({"runs": [sim.get_run(rid) for rid in sim.run_ids()]})


async def get_run(request: web.Request) -> web.Response:
    sim, run_id = _sim(request), request.match_info["run_id"]
    return web.json_response({"run": sim.get_run(run_id), "visible": sim.visible_run(run_id)})


async def patch_run(request: web.Request) -> web.Response:
    return web.json_response(_sim(request).update_run(request.match_info["run_id"], **await _object_body(request)))


async def add_artifact(request: web.Request) -> web.Response:
    body = await _object_body(request)
    artifact = _sim(request).add_artifact(request.match_info["run_id"], str(body["artifact_type"]), body.get("data"))
    return web.json_response(artifact, status=201)


async def reveal(request: web.Request) -> web.Response:
    _sim(request).reveal(request.match_info.get("run_id"))
    return web.json_response({"revealed": True})


async def human_followup(request: web.Request) -> web.Response:
    body = await _object_body(request)
    _sim(request).submit_followup(request.match_info["run_id"], body.get("message"), body.get("mode"))
    return web.json_response({})


async def human_cancel(request: web.Request) -> web.Response:
    return web.json_response(_sim(request).cancel_run(request.match_info["run_id"]))


async def followups(request: web.Request) -> web.Response:
    records = _sim(request).followups(request.query.get("run_id"))
    return web.json_response({"followups": [r.to_json() for r in records]})


async def cancels(request: web.Request) -> web.Response:
    records = _sim(request).cancels(request.query.get("run_id"))
    return web.json_response({"cancels": [r.to_json() for r in records]})


async def requests_log(request: web.Request) -> web.Response:
    records = _sim(request).requests(request.query.get("path"), request.query.get("method"))
    return web.json_response({"requests": [r.to_json() for r in records]})


async def clear_requests(request: web.Request) -> web.Response:
    _sim(request).clear_requests()
    return web.json_response({"cleared": True})


async def reset(request: web.Request) -> web.Response:
    for task in request.app[SCENARIO_TASKS]:
        task.cancel()
    request.app[SCENARIO_TASKS].clear()
    _sim(request).reset()
    return web.json_response({"reset": True})


async def add_faults(request: web.Request) -> web.Response:
    body = await _json_body(request)
    specs = body if isinstance(body, list) else [body]
    sim = _sim(request)
    added = [sim.faults.add(Fault.from_json(spec)) for spec in specs]
    return web.json_response({"faults": [f.to_json() for f in added]}, status=201)


async def list_faults(request: web.Request) -> web.Response:
    return web.json_response({"faults": [f.to_json() for f in _sim(request).faults.pending()]})


async def clear_faults(request: web.Request) -> web.Response:
    _sim(request).faults.clear()
    return web.json_response({"faults": []})


async def clock(request: web.Request) -> web.Response:
    sim = _sim(request)
    if request.method == "POST":
        body = await _object_body(request)
        if not isinstance(sim.clock, SimClock):
            raise SimError(409, "the simulator was given a custom clock that cannot be driven remotely")
        if body.get("freeze") is True:
            sim.clock.freeze(parse_ts(body["set"]) if body.get("set") else None)
        elif body.get("set"):
            sim.clock.set(parse_ts(body["set"]))
        if body.get("freeze") is False:
            sim.clock.unfreeze()
        if body.get("advance"):
            sim.clock.advance(float(body["advance"]))
    frozen = isinstance(sim.clock, SimClock) and sim.clock.frozen
    return web.json_response({"now": format_ts(sim.now()), "frozen": frozen})


async def configure(request: web.Request) -> web.Response:
    """Simulator-wide knobs: ``followup_transitions``, ``cancel_response`` and ``factories``."""
    sim = _sim(request)
    if request.method == "POST":
        body = await _object_body(request)
        if "followup_transitions" in body:
            transitions = body["followup_transitions"] or {}
            if not isinstance(transitions, dict):
                raise SimError(400, "followup_transitions must be an object of state -> state")
            sim.followup_transitions = {str(k): str(v) for k, v in transitions.items()}
        if "cancel_response" in body:
            sim.cancel_response = str(body["cancel_response"])
        if "factories" in body:
            factories = body["factories"] or {}
            if not isinstance(factories, dict) or not all(isinstance(v, list) for v in factories.values()):
                raise SimError(400, "factories must be an object of factory_uid -> [agent uid, ...]")
            sim.factories = {str(k): frozenset(map(str, v)) for k, v in factories.items()}
    return web.json_response(
        {
            "followup_transitions": sim.followup_transitions,
            "cancel_response": sim.cancel_response,
            "factories": {k: sorted(v) for k, v in sim.factories.items()},
        }
    )


async def start_scenario(request: web.Request) -> web.Response:
    body = await _object_body(request)
    name = str(body.get("name", "demo"))
    if name not in SCENARIOS:
        raise SimError(404, f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    task = asyncio.ensure_future(play(_sim(request), SCENARIOS[name], speed=float(body.get("speed", 1.0))))
    request.app[SCENARIO_TASKS].append(task)
    return web.json_response({"started": name}, status=202)


async def blob(request: web.Request) -> web.Response:
    content, mime = _sim(request).attachment_blob(
        request.match_info["run_id"],
        request.match_info["attachment_id"],
        request.query.get("expires", ""),
        request.query.get("sig", ""),
    )
    return web.Response(body=content, content_type=mime)


async def _cancel_scenarios(app: web.Application) -> None:
    for task in app[SCENARIO_TASKS]:
        task.cancel()
    await asyncio.gather(*app[SCENARIO_TASKS], return_exceptions=True)


def add_control_routes(app: web.Application) -> None:
    app[SCENARIO_TASKS] = []
    app.on_cleanup.append(_cancel_scenarios)
    routes: list[tuple[str, str, Handler]] = [
        ("POST", "/_sim/runs", create_run),
        ("GET", "/_sim/runs", list_all_runs),
        ("GET", "/_sim/runs/{run_id}", get_run),
        ("PATCH", "/_sim/runs/{run_id}", patch_run),
        ("POST", "/_sim/runs/{run_id}/artifacts", add_artifact),
        ("POST", "/_sim/runs/{run_id}/reveal", reveal),
        ("POST", "/_sim/runs/{run_id}/followups", human_followup),
        ("POST", "/_sim/runs/{run_id}/cancel", human_cancel),
        ("POST", "/_sim/reveal", reveal),
        ("GET", "/_sim/followups", followups),
        ("GET", "/_sim/cancels", cancels),
        ("GET", "/_sim/requests", requests_log),
        ("DELETE", "/_sim/requests", clear_requests),
        ("POST", "/_sim/reset", reset),
        ("POST", "/_sim/faults", add_faults),
        ("GET", "/_sim/faults", list_faults),
        ("DELETE", "/_sim/faults", clear_faults),
        ("GET", "/_sim/clock", clock),
        ("POST", "/_sim/clock", clock),
        ("GET", "/_sim/config", configure),
        ("POST", "/_sim/config", configure),
        ("POST", "/_sim/scenario", start_scenario),
        ("GET", "/_sim/blobs/{run_id}/{attachment_id}", blob),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, _guard(handler))
