"""Why a poll stopped or slowed, in a word for metrics and a sentence for people.

Every failure of a poll is one of a few kinds an operator can act on; the
reason labels ``oz_bridge_poll_stalls_total`` and the sentence goes into the
log and ``/readyz``. A 429's ``Retry-After`` is kept so the backoff honours it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import oz_agent_sdk
from sqlalchemy.exc import SQLAlchemyError

from bridge.api_time import parse_http_date
from bridge.oz import CursorRepeated, UnreadableAnswer

RATE_LIMITED = "rate_limited"
API_ERROR = "api_error"
API_REFUSED = "api_refused"
AUTH_REFUSED = "auth_refused"
API_TIMEOUT = "api_timeout"
API_UNREACHABLE = "api_unreachable"
UNREADABLE_PAGE = "unreadable_page"
CURSOR_REPEATED = "cursor_repeated"
PAGE_LIMIT = "page_limit"
DATABASE_ERROR = "database_error"
INTERNAL_ERROR = "internal_error"

STALL_REASONS = (
    RATE_LIMITED, API_ERROR, API_REFUSED, AUTH_REFUSED, API_TIMEOUT, API_UNREACHABLE,
    UNREADABLE_PAGE, CURSOR_REPEATED, PAGE_LIMIT, DATABASE_ERROR, INTERNAL_ERROR,
)  # fmt: skip

LISTING = "GET /agent/runs"


@dataclass(frozen=True)
class PollProblem:
    reason: str
    text: str
    retry_after: float | None = None  # seconds the API asked the bridge to wait


def retry_after_seconds(value: str | None, api_now: datetime) -> float | None:
    """A ``Retry-After`` header (delay-seconds or an HTTP-date) as seconds from now, or None."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        moment = parse_http_date(value)
        return None if moment is None else max(0.0, (moment - api_now).total_seconds())
    return seconds if seconds >= 0 else None


def _status_problem(exc: oz_agent_sdk.APIStatusError, api_now: datetime) -> PollProblem:
    status = exc.status_code
    if status == 429:
        wait = retry_after_seconds(exc.response.headers.get("retry-after"), api_now)
        asked = f"; it asked for {wait:g} s" if wait is not None else ""
        return PollProblem(RATE_LIMITED, f"the Oz API is rate limiting polls (429 on {LISTING}{asked})", wait)
    if status in (401, 403):
        return PollProblem(AUTH_REFUSED, f"the Oz API refused the API key ({status} on {LISTING}); check WARP_API_KEY")
    if status < 500:
        return PollProblem(API_REFUSED, f"the Oz API refused the listing ({status} on {LISTING})")
    return PollProblem(API_ERROR, f"the Oz API answered {status} to {LISTING}")


def explain(exc: BaseException, api_now: datetime) -> PollProblem:
    """What went wrong, for the metric, the log line and ``/readyz``."""
    if isinstance(exc, oz_agent_sdk.APIStatusError):
        return _status_problem(exc, api_now)
    if isinstance(exc, oz_agent_sdk.APITimeoutError):
        return PollProblem(API_TIMEOUT, f"{LISTING} timed out")
    if isinstance(exc, oz_agent_sdk.APIConnectionError):
        return PollProblem(API_UNREACHABLE, f"the Oz API cannot be reached ({exc})")
    if isinstance(exc, UnreadableAnswer):
        return PollProblem(UNREADABLE_PAGE, f"the Oz API's answer to {LISTING} is not a page of runs: {exc}")
    if isinstance(exc, CursorRepeated):
        return PollProblem(CURSOR_REPEATED, f"{exc} (what was read is kept; the next poll starts from the cursor)")
    if isinstance(exc, SQLAlchemyError):
        return PollProblem(DATABASE_ERROR, f"the database failed during a poll ({type(exc).__name__})")
    return PollProblem(INTERNAL_ERROR, f"the poll failed unexpectedly ({type(exc).__name__}: {exc})")
