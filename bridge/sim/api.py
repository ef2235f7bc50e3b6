"""The simulated Oz REST API: routes, bearer auth, fault injection, request log."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from email.utils import format_datetime
from typing import Any

from aiohttp import web

from .artifact_api import add_artifact_routes
from .clock import format_ts
from .creation import create_from_api
from .errors import SimError, problem_response
from .faults import Fault
from .hostile import mutate_listing
from .records import RequestRecord
from .state import Simulator

__all__ = ["BASE_PATH_KEY", "SIM_KEY", "add_api_routes", "api_middleware"]

SIM_KEY = web.AppKey("oz_sim", Simulator)
BASE_PATH_KEY = web.AppKey("oz_sim_base_path", str)
FAULT_KEY = web.RequestKey("oz_sim_fault", Fault)  # the fault a handler applies to its own answer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_MALFORMED_BODIES: dict[str, tuple[str, str]] = {
    # What a misbehaving proxy or a half-written response looks like.
    "non_json": ("text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "truncated": ("application/json", '{"runs": [{"run_id": "'),
    "wrong_shape": ("application/json", '{"data": [], "has_more": false, "id": 7}'),
}


def _sim(request: web.Request) -> Simulator:
    return request.app[SIM_KEY]


def _is_api_path(path: str, base: str) -> bool:
    if base:
        return path == base or path.startswith(base + "/")
    return not path.startswith("/_sim")


async def _list_runs(request: web.Request) -> web.Response:
    body = _sim(request).list_runs(request.query.items(), copied=False)
    fault: Fault | None = request.get(FAULT_KEY)
    if fault is not None and fault.mutate is not None:
        body = mutate_listing(body, fault, request.query.get("cursor"))
    return web.json_response(body)


async def _retrieve_run(request: web.Request) -> web.Response:
    return web.json_response(_sim(request).retrieve_run(request.match_info["run_id"]))


async def _submit_followup(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        body: Any = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise SimError(400, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise SimError(400, "request body must be a JSON object")
    # RunSubmitFollowupParams makes both fields optional: an absent message is not an error.
    _sim(request).submit_followup(request.match_info["run_id"], body.get("message"), body.get("mode"))
    return web.json_response({})


async def _cancel_run(request: web.Request) -> web.Response:
    # RunCancelResponse is a bare string, so the body is a JSON string literal.
    return web.json_response(_sim(request).cancel_run(request.match_info["run_id"]))


async def _handoff_attachments(request: web.Request) -> web.Response:
    origin = f"{request.scheme}://{request.host}"
    return web.json_response(_sim(request).handoff_attachments(request.match_info["run_id"], origin))


async def _create_run(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        body: Any = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise SimError(400, "request body is not valid JSON") from None
    return web.json_response(create_from_api(_sim(request), body))


async def _session_redirect(request: web.Request) -> web.Response:
    return web.json_response(_sim(request).session_redirect(request.match_info["session_uuid"]))


async def _conversation_redirect(request: web.Request) -> web.Response:
    return web.json_response(_sim(request).conversation_redirect(request.match_info["conversation_id"]))


# The SDK calls these with ``security={}``: they are public, so that anonymous viewers can
# resolve a shared link. No credentials are checked, and an unknown id is a 404.
_PUBLIC: frozenset[Handler] = frozenset({_session_redirect, _conversation_redirect})


def add_api_routes(app: web.Application, base_path: str) -> None:
    runs = f"{base_path}/agent/runs"
    app.router.add_get(runs, _list_runs)
    app.router.add_post(runs, _create_run)
    add_artifact_routes(app, base_path)
    app.router.add_get(runs + "/{run_id}", _retrieve_run)
    app.router.add_post(runs + "/{run_id}/followups", _submit_followup)
    app.router.add_post(runs + "/{run_id}/cancel", _cancel_run)
    app.router.add_get(runs + "/{run_id}/handoff/attachments", _handoff_attachments)
    app.router.add_get(f"{base_path}/agent/sessions/{{session_uuid}}/redirect", _session_redirect)
    app.router.add_get(f"{base_path}/agent/conversations/{{conversation_id}}/redirect", _conversation_redirect)


def _authorized(request: web.Request, api_key: str) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode())


def _fault_response(fault: Fault, instance: str) -> web.Response | None:
    if fault.status is not None:
        headers = {}
        if fault.retry_after is not None:
            ra = fault.retry_after
            headers["Retry-After"] = str(int(ra)) if float(ra).is_integer() else str(ra)
        return problem_response(SimError(fault.status, f"injected fault #{fault.fault_id}", headers=headers), instance)
    if fault.malformed is not None and fault.malformed in _MALFORMED_BODIES:
        content_type, text = _MALFORMED_BODIES[fault.malformed]
        return web.Response(status=200, text=text, content_type=content_type)
    return None


def _cut(response: web.StreamResponse) -> web.StreamResponse:
    """The genuine answer, half of it: what a connection dropped mid-body leaves."""
    if not isinstance(response, web.Response) or response.body is None:
        return response
    raw = bytes(response.body)  # type: ignore[arg-type]
    return web.Response(status=response.status, body=raw[: len(raw) // 2], content_type=response.content_type)


async def _dispatch(request: web.Request, handler: Handler, sim: Simulator, fault: Fault | None) -> web.StreamResponse:
    if fault is not None:
        if fault.latency:
            await asyncio.sleep(fault.latency)
        injected = _fault_response(fault, request.path)
        if injected is not None:
            return injected
        request[FAULT_KEY] = fault
    if request.match_info.handler not in _PUBLIC and not _authorized(request, sim.api_key):
        return problem_response(SimError(401, "missing or invalid bearer token"), request.path)
    try:
        response = await handler(request)
    except SimError as err:
        return problem_response(err, request.path)
    except web.HTTPException as exc:
        # Unknown routes and wrong methods still get problem+json bodies.
        return problem_response(SimError(exc.status, exc.reason), request.path)
    if fault is not None and fault.hold:
        await asyncio.sleep(fault.hold)  # done, but the answer is slow to come back (or never arrives)
    return _cut(response) if fault is not None and fault.malformed == "cut" else response


def _body_for_log(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    base = request.app[BASE_PATH_KEY]
    if not _is_api_path(request.path, base):
        return await handler(request)
    sim = request.app[SIM_KEY]
    at = format_ts(sim.now())
    raw = await request.read() if request.can_read_body else b""
    api_path = request.path[len(base) :] if base else request.path
    fault = sim.faults.take(request.method, request.path, api_path)
    status = 499  # recorded if the client disconnects mid-latency
    try:
        response = await _dispatch(request, handler, sim, fault)
        # The API's own clock, not the machine's: a client measuring skew must see the simulated one.
        response.headers["Date"] = format_datetime(sim.now(), usegmt=True)
        status = response.status
        return response
    finally:
        query: dict[str, list[str]] = {}
        for key, value in request.query.items():
            query.setdefault(key, []).append(value)
        sim.record_request(
            RequestRecord(
                method=request.method,
                path=request.path,
                query=query,
                status=status,
                at=at,
                retry_count=request.headers.get("x-stainless-retry-count"),
                body=_body_for_log(raw),
                fault_id=fault.fault_id if fault else None,
                headers={k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"},
            )
        )
