"""Why a poll failed, as a reason for metrics and a sentence for people; a 429's Retry-After kept."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import oz_agent_sdk
import pytest
from sqlalchemy.exc import OperationalError

from bridge import poll_problems
from bridge.oz import CursorRepeated, UnreadableAnswer
from bridge.poll_problems import explain, retry_after_seconds

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def status_error(status: int, headers: dict[str, str] | None = None) -> oz_agent_sdk.APIStatusError:
    request = httpx.Request("GET", "https://oz.example/api/v1/agent/runs")
    response = httpx.Response(status, headers=headers or {}, request=request)
    return oz_agent_sdk.AsyncOzAPI(api_key="k", base_url="https://oz.example")._make_status_error_from_response(
        response
    )


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), ("0.5", 0.5), ("Thu, 01 Jan 2026 12:00:30 GMT", 30.0), ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),
     ("-3", None), ("soon", None), (None, None)],
)  # fmt: skip
def test_retry_after_is_seconds_or_an_http_date_in_the_apis_time(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, NOW) == seconds


@pytest.mark.parametrize(
    ("exc", "reason", "words"),
    [
        (status_error(429, {"retry-after": "12"}), poll_problems.RATE_LIMITED, "rate limiting"),
        (status_error(503), poll_problems.API_ERROR, "answered 503"),
        (status_error(401), poll_problems.AUTH_REFUSED, "WARP_API_KEY"),
        (status_error(400), poll_problems.API_REFUSED, "refused the listing (400"),
        (UnreadableAnswer("not JSON (...)"), poll_problems.UNREADABLE_PAGE, "not a page of runs"),
        (CursorRepeated(7), poll_problems.CURSOR_REPEATED, "after 7 pages"),
        (OperationalError("SELECT 1", {}, Exception("disk I/O error")), poll_problems.DATABASE_ERROR, "database"),
        (RuntimeError("boom"), poll_problems.INTERNAL_ERROR, "boom"),
    ],
)
def test_each_failure_has_a_reason_and_a_sentence(exc: BaseException, reason: str, words: str) -> None:
    problem = explain(exc, NOW)
    assert problem.reason == reason and problem.reason in poll_problems.STALL_REASONS
    assert words in problem.text


def test_a_429_keeps_how_long_the_api_asked_to_wait() -> None:
    assert explain(status_error(429, {"retry-after": "12"}), NOW).retry_after == 12.0
    assert explain(status_error(429), NOW).retry_after is None


def test_a_database_failure_names_no_statement_or_parameter() -> None:
    text = explain(OperationalError("SELECT secret FROM t WHERE k = ?", {"k": "hunter2"}, Exception("x")), NOW).text
    assert "hunter2" not in text and "SELECT" not in text
