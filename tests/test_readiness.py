"""/readyz from the stored poll state and the polling replica's own status, in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.readiness import PollStatus, assess
from bridge.store.runs import PollState

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def state(age: float | None, problem: str | None = None, offset: float | None = None) -> PollState:
    last = NOW - timedelta(seconds=age) if age is not None else None
    return PollState(NOW, NOW, last, None, offset, problem)


def test_ready_after_a_recent_poll_with_its_age_and_role() -> None:
    ready, detail = assess(state(2), PollStatus(clock_skew=0.4), True, NOW, 15)
    assert ready and detail["role"] == "leader" and detail["last_poll_age_seconds"] == 2
    assert detail["api_clock_skew_seconds"] == 0.4 and "warnings" not in detail


def test_not_ready_without_a_poll_within_four_intervals_says_why_in_words() -> None:
    status = PollStatus(3, "rate_limited", "the Oz API is rate limiting polls (429 on GET /agent/runs)", 30.0)
    ready, detail = assess(state(61), status, True, NOW, 15)
    assert not ready and detail["reason"] == "no successful poll within 4 poll intervals"
    assert detail["poll_error"].startswith("the Oz API is rate limiting polls")
    assert detail["poll_problem"] == "rate_limited" and detail["poll_backoff_seconds"] == 30.0
    assert any("backing off" in w for w in detail["warnings"])


def test_a_follower_stays_ready_while_another_takes_over_a_dead_leaders_lease() -> None:
    # The lease (3 intervals) ran out and a follower took it; its first poll is under way.
    ready, detail = assess(state(3.5 * 15), None, False, NOW, 15)
    assert ready and detail["role"] == "follower"
    ready, detail = assess(state(4 * 15 + 1), None, False, NOW, 15)  # nobody took over: a real stall
    assert not ready and detail["reason"] == "no successful poll within 4 poll intervals"


def test_a_follower_reports_the_leaders_problem_and_skew_from_the_store() -> None:
    ready, detail = assess(state(None, "the Oz API answered 503 to GET /agent/runs", -600.0), None, False, NOW, 15)
    assert not ready and detail["reason"] == "no successful poll yet"
    assert detail["poll_error"] == "the Oz API answered 503 to GET /agent/runs"
    assert detail["role"] == "follower" and detail["api_clock_skew_seconds"] == -600.0
    assert detail["warnings"] == [
        "the Oz API's clock is 600 s behind this replica's; the bridge takes time from the API's answers, "
        "so polling is unaffected"
    ]


def test_a_poll_cut_short_is_a_warning_not_a_failure() -> None:
    ready, detail = assess(state(1), PollStatus(cut_short="the last poll stopped at the page limit"), True, NOW, 15)
    assert ready and detail["warnings"] == ["the last poll stopped at the page limit"]
