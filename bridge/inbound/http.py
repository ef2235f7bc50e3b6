"""``POST /slack/events`` on aiohttp: a thin adapter from HTTP to the neutral request.

Order matters: size limit, then the signature over the bytes exactly as they
arrived (401 before anything reads them), then the content coding (Slack never
compresses what it sends, so a coded body is refused with 415 rather than
decoded), then parsing (400), then the inbox. The HTTP server is built with
automatic decompression off (``bridge.web``), so the signed bytes are the
received bytes. The answer goes out as soon as the request is stored; the
follow-up or cancel happens afterwards in the inbox worker.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bridge.inbound.inbox import Intake
from bridge.inbound.priority import AnswersFirst
from bridge.inbound.request import MalformedRequest, UrlVerification, parse_http
from bridge.inbound.verify import RequestVerifier
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.web import MAX_BODY

log = get_logger("bridge.inbound.http")
PATH = "/slack/events"
_CHUNK = 64 * 1024
_IDENTITY = frozenset({"", "identity"})


class BodyTooLarge(Exception):
    pass


class BodyUnreadable(Exception):
    """The client broke the framing (a bad chunk, a body cut short)."""


async def read_body(request: web.Request, limit: int = MAX_BODY) -> bytes:
    """The raw body, refusing more than ``limit`` bytes even without a Content-Length."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge
    body = bytearray()
    try:
        while chunk := await request.content.read(_CHUNK):
            body += chunk
            if len(body) > limit:
                raise BodyTooLarge
    except (web.RequestPayloadError, ConnectionError) as exc:
        raise BodyUnreadable(type(exc).__name__) from None
    return bytes(body)


def content_coding(request: web.Request) -> str:
    return ",".join(part.strip() for part in request.headers.getall("Content-Encoding", [])).lower()


class SlackEventsEndpoint:
    def __init__(
        self, verifier: RequestVerifier, intake: Intake, metrics: Metrics, priority: AnswersFirst | None = None
    ) -> None:
        self._verifier = verifier
        self._intake = intake
        self._metrics = metrics
        self._priority = priority or AnswersFirst()

    def route(self) -> web.RouteDef:
        return web.post(PATH, self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        with self._priority.answering():
            return await self._answer(request)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await read_body(request)
        except BodyTooLarge:
            return self._refuse("too_large", 413, "request body over 1 MiB")
        except BodyUnreadable:
            return self._refuse("malformed", 400, "request body could not be read")
        if not self._verifier.is_valid(body, request.headers):
            return self._refuse("unsigned", 401, "invalid or stale Slack signature")
        if content_coding(request) not in _IDENTITY:
            refused = self._refuse("encoded", 415, "Slack requests are not compressed: send the body as is")
            refused.headers["Accept-Encoding"] = "identity"
            return refused
        try:
            slack_request = parse_http(body, request.headers.get("Content-Type", ""))
        except MalformedRequest as exc:
            return self._refuse("malformed", 400, str(exc))
        if isinstance(slack_request, UrlVerification):
            self._metrics.slack_inbound.labels("url_verification", "answered").inc()
            return web.json_response({"challenge": slack_request.challenge})
        try:
            await self._intake.accept(slack_request)
        except (SQLAlchemyError, OSError) as exc:
            # Not stored, so not acknowledged: Slack will send it again.
            log.warning("could not store a Slack request; Slack will retry", error=type(exc).__name__)
            return self._refuse("store_failed", 503, "temporarily unable to accept the request")
        return web.Response(status=200)

    def _refuse(self, result: str, status: int, reason: str) -> web.Response:
        self._metrics.slack_inbound.labels("http", result).inc()
        return web.json_response({"error": reason}, status=status)
