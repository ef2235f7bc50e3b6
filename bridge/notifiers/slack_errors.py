"""Slack's answers as the delivery policy needs them: retry, give up, or wait in place.

Only classification lives here; when to retry is ``bridge.delivery``'s business.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bridge.notifiers.base import Outcome
from bridge.notifiers.webhook import parse_retry_after

RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_ERROR_CODE = re.compile(r"^[a-z0-9_.]{1,64}$")


class BoundedRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """The SDK's rate-limit retry, but only for short waits: a long one should not hold a worker."""

    def __init__(self, max_retry_count: int, max_wait: float) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        values = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), [])
        wait = parse_retry_after(values[0] if values else None, datetime.now(UTC))
        return wait is None or wait <= self.max_wait


def error_code(exc: SlackApiError) -> str:
    """Slack's error code, or the HTTP status; never anything echoing the request."""
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    code = str(data.get("error") or "")
    return code if _ERROR_CODE.match(code) else f"HTTP {exc.response.status_code}"


def is_transient(exc: SlackApiError) -> bool:
    status = exc.response.status_code
    return status == 429 or status >= 500 or error_code(exc) in RETRYABLE_ERRORS


def classify(exc: SlackApiError) -> Outcome:
    """Whether a Slack API error is worth retrying; the code goes into the outbox's last_error."""
    status, code = exc.response.status_code, error_code(exc)
    detail = f"slack error: {code}"
    if status == 429 or code in ("ratelimited", "rate_limited"):
        headers: Any = exc.response.headers or {}
        value = next((str(v) for k, v in headers.items() if k.lower() == "retry-after"), None)
        return Outcome.retry(detail, retry_after=parse_retry_after(value, datetime.now(UTC)))
    if is_transient(exc):
        return Outcome.retry(detail)
    return Outcome.permanent(detail)
