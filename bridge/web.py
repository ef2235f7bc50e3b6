"""The HTTP surface: health, readiness, metrics, and the routes inbound adds."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

Readiness = Callable[[], Awaitable[tuple[bool, dict[str, object]]]]
MetricsRender = Callable[[], Awaitable[bytes]]
MAX_BODY = 1024 * 1024


class ServerLog(logging.Logger):
    """aiohttp's server log, where a client's malformed HTTP is one warning line, not an error.

    aiohttp logs every request its parser refuses (a bad chunk, a header too long) with
    ``logger.exception``: an error and a traceback for what is the client's mistake,
    already answered with 400. Failures of the server's own code stay errors.
    """

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            detail = " ".join(str(exc_info.message or type(exc_info).__name__).split())[:200]
            self.warning("malformed HTTP request refused (%s %s)", exc_info.code, detail)
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


def _server_log() -> ServerLog:
    log = ServerLog("aiohttp.server")
    log.parent = logging.getLogger("aiohttp")  # through the bridge's handlers, like aiohttp's own
    return log


# How the HTTP server must be run. aiohttp decodes a Content-Encoding before any
# handler sees the body; Slack signs the bytes it sends, so handlers get them as
# received. (The other endpoints take no body.)
SERVER_OPTIONS: dict[str, Any] = {"auto_decompress": False, "logger": _server_log()}


def make_runner(app: web.Application) -> web.AppRunner:
    return web.AppRunner(app, access_log=None, handle_signals=False, **SERVER_OPTIONS)


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def build_web_app(
    readiness: Readiness,
    render_metrics: MetricsRender,
    extra_routes: Iterable[web.RouteDef] = (),
) -> web.Application:
    async def readyz(_request: web.Request) -> web.Response:
        ready, detail = await readiness()
        return web.json_response({"ready": ready, **detail}, status=200 if ready else 503)

    async def metrics(_request: web.Request) -> web.Response:
        body = await render_metrics()
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    app = web.Application(client_max_size=MAX_BODY)
    app.add_routes(
        [web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics), *extra_routes]
    )
    return app
