"""A webhook receiver that verifies Standard Webhooks signatures, over real HTTP.

It can answer with a scripted list of statuses first (e.g. 503, 503, then 200)
and records every request so tests can check bodies, ids, order and retries.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]
    status: int
    signature_valid: bool | None


@dataclass
class WebhookReceiver:
    secret: str | None = None
    script: list[int] = field(default_factory=list)
    retry_after: str | None = None
    delay: float = 0.0
    max_body: int = 64 * 1024 * 1024  # a run with thousands of artifacts makes bodies of megabytes
    requests: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    url: str = ""

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.text()
        if self.delay:
            await asyncio.sleep(self.delay)
        headers = dict(request.headers)
        valid: bool | None = None
        if self.secret is not None:
            try:
                Webhook(self.secret).verify(raw, {k.lower(): v for k, v in headers.items()})
                valid = True
            except WebhookVerificationError:
                valid = False
        status = self.script.pop(0) if self.script else 200
        self.requests.append(Received(headers, json.loads(raw), status, valid))
        extra = {"Retry-After": self.retry_after} if self.retry_after and status != 200 else {}
        return web.Response(status=status, text="ok" if status == 200 else "no", headers=extra)

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """Bodies the receiver answered 2xx to, in arrival order."""
        return [r.body for r in self.requests if 200 <= r.status < 300]

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application(client_max_size=self.max_body)
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *exc: object | type[BaseException] | TracebackType | None) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
