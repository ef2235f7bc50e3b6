"""Calling Oz and Slack: each failure becomes "try again later" or "refused, for good".

The worker owns retries; these helpers only decide which kind a failure is, and
keep what they report short and free of credentials (no request, no headers).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import aiohttp
from oz_agent_sdk import APIConnectionError, APIError, APIResponseValidationError, APIStatusError
from slack_sdk.errors import SlackApiError, SlackClientError

T = TypeVar("T")
# Worth another try: the API may well say yes later.
_TRANSIENT_STATUSES = frozenset({408, 425, 429})
_SLACK_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_DETAIL_LIMIT = 300


class Transient(Exception):
    """Not done yet, and worth retrying; ``retry_after`` is the server's own hint."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Refused(Exception):
    """The Oz API answered with a definitive 4xx; ``detail`` is its own explanation, ``body`` its whole answer."""

    def __init__(self, status: int, detail: str, body: object = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.body = body


class SlackRefused(Exception):
    """Slack answered ``ok: false`` with an error that retrying will not fix."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _retry_after(headers: object) -> float | None:
    value = getattr(headers, "get", lambda _name: None)("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _api_detail(exc: APIStatusError) -> str:
    body = exc.body
    detail = body.get("detail") if isinstance(body, dict) else None
    text = detail if isinstance(detail, str) and detail.strip() else exc.response.reason_phrase
    return " ".join(text.split())[:_DETAIL_LIMIT]


async def oz_call(call: Awaitable[T], *, effect: bool = False) -> T | None:
    """Await an Oz SDK call; raise Transient or Refused for failures.

    With ``effect`` (follow-up, cancel) a 2xx whose body does not parse still
    counts as done: the server acted, and asking again would act twice.
    """
    try:
        return await call
    except APIResponseValidationError as exc:
        if effect and 200 <= exc.status_code < 300:
            return None
        raise Transient(f"Oz API answered {exc.status_code} with an unreadable body") from None
    except APIStatusError as exc:
        if exc.status_code in _TRANSIENT_STATUSES or exc.status_code >= 500:
            raise Transient(f"Oz API answered {exc.status_code}", _retry_after(exc.response.headers)) from None
        raise Refused(exc.status_code, _api_detail(exc), exc.body) from None
    except APIConnectionError as exc:
        raise Transient(f"Oz API unreachable ({type(exc).__name__})") from None
    except APIError as exc:
        raise Transient(f"Oz API call failed ({type(exc).__name__})") from None
    except (ValueError, TypeError):
        # The SDK checks the status before parsing, so this is a 2xx whose body would not parse.
        if effect:
            return None
        raise Transient("Oz API answered with an unreadable body") from None


async def slack_call(call: Awaitable[T]) -> T:
    """Await a Slack Web API call; raise Transient or SlackRefused for failures."""
    try:
        return await call
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "unknown_error")
        status = int(getattr(exc.response, "status_code", 200) or 200)
        if error in _SLACK_TRANSIENT_ERRORS or status == 429 or status >= 500:
            raise Transient(f"Slack answered {error}", _retry_after(exc.response.headers)) from None
        raise SlackRefused(error) from None
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise Transient(f"Slack unreachable ({type(exc).__name__})") from None
    except SlackClientError as exc:
        raise SlackRefused(type(exc).__name__) from None
