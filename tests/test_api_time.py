"""The API's clock, from its Date header: skew measured, API time estimated, odd headers survived."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.api_time import ApiClock, parse_http_date

LOCAL = datetime(2026, 1, 1, 12, 0, 0, 300000, tzinfo=UTC)


def test_the_offset_is_the_apis_time_minus_ours_at_the_middle_of_the_request() -> None:
    clock = ApiClock(lambda: LOCAL)
    answered = clock.observe("Thu, 01 Jan 2026 11:50:00 GMT", LOCAL - timedelta(seconds=0.2), LOCAL)
    assert answered == datetime(2026, 1, 1, 11, 50, tzinfo=UTC)
    assert clock.skew_seconds is not None and round(clock.skew_seconds, 1) == -599.7
    # answered mid-request (0.1 s ago), mid-second: the API's now is half a second and 0.1 s past its Date
    assert abs((clock.now() - datetime(2026, 1, 1, 11, 50, 0, 600000, tzinfo=UTC)).total_seconds()) < 0.001


def test_before_any_answer_and_without_a_date_the_bridges_clock_stands_in() -> None:
    clock = ApiClock(lambda: LOCAL)
    assert clock.now() == LOCAL and clock.skew_seconds is None
    assert clock.observe(None, LOCAL, LOCAL) == LOCAL - timedelta(seconds=1)
    assert clock.observe("not a date", LOCAL, LOCAL) == LOCAL - timedelta(seconds=1)
    assert clock.skew_seconds is None


def test_http_dates_in_any_zone_are_read_as_utc() -> None:
    assert parse_http_date("Thu, 01 Jan 2026 13:00:00 +0100") == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert parse_http_date("") is None
