"""Five-field cron expressions mean what crontab(5) says, whatever APScheduler numbers from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.cron import CronSchedule

FRIDAY_NOON = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)  # Friday 2 January 2026


def weekdays_fired(expression: str, days: int = 7) -> list[str]:
    schedule, moment, seen = CronSchedule.parse(expression), FRIDAY_NOON, []
    while (moment := schedule.next_after(moment)) is not None and moment < FRIDAY_NOON + timedelta(days=days):
        seen.append(moment.strftime("%a"))
    return seen


@pytest.mark.parametrize(
    ("expression", "days"),
    [
        ("0 9 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 9 * * 0", ["Sun"]),
        ("0 9 * * 7", ["Sun"]),
        ("0 9 * * 5-7", ["Sat", "Sun", "Fri"]),
        ("0 9 * * mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 9 * * */2", ["Sun", "Tue", "Thu", "Sat"]),
        ("0 9 * * 0-6", ["Sat", "Sun", "Mon", "Tue", "Wed", "Thu", "Fri"]),
    ],
)
def test_day_of_week_numbers_count_from_sunday(expression: str, days: list[str]) -> None:
    fired = weekdays_fired(expression)
    assert sorted(fired) == sorted(days) and len(fired) == len(days)


def test_a_restricted_day_of_month_and_day_of_week_fire_on_either() -> None:
    schedule = CronSchedule.parse("0 0 13 * 5")  # the 13th, and every Friday
    first = schedule.next_after(FRIDAY_NOON)
    second = schedule.next_after(first) if first else None
    assert (first, second) == (datetime(2026, 1, 9, tzinfo=UTC), datetime(2026, 1, 13, tzinfo=UTC))


def test_times_are_in_the_digests_zone_across_daylight_saving() -> None:
    schedule = CronSchedule.parse("0 9 * * *", "Europe/Paris")
    winter = schedule.next_after(datetime(2026, 3, 27, 12, tzinfo=UTC))
    summer = schedule.next_after(winter) if winter else None
    assert winter is not None and winter.astimezone(UTC).hour == 8
    assert summer is not None and summer.astimezone(UTC).hour == 7


def test_latest_finds_the_last_time_at_or_before_a_moment() -> None:
    hourly = CronSchedule.parse("@hourly")
    assert hourly.latest(FRIDAY_NOON) == FRIDAY_NOON
    assert hourly.latest(FRIDAY_NOON + timedelta(minutes=59)) == FRIDAY_NOON
    assert hourly.latest(FRIDAY_NOON, after=FRIDAY_NOON) is None
    yearly = CronSchedule.parse("0 0 1 1 *")
    assert yearly.latest(FRIDAY_NOON) == datetime(2026, 1, 1, tzinfo=UTC)
    assert yearly.latest(FRIDAY_NOON, after=datetime(2026, 1, 1, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("0 9 * *", "not a five-field cron expression"),
        ("0 9 * * * *", "not a five-field cron expression"),
        ("61 * * * *", r"higher than the maximum value \(59\)"),
        ("0 9 * * 8", "'8' is not a day of the week"),
        ("0 9 * * 5-1", "runs backwards"),
        ("0 9 * * */0", "a step of 0"),
        ("every day", "not a five-field cron expression"),
    ],
)
def test_bad_expressions_are_explained(expression: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        CronSchedule.parse(expression)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd", "UTC+2"])
def test_unknown_time_zones_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="is not an IANA time zone name"):
        CronSchedule.parse("0 9 * * *", name)
