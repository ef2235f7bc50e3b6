"""Five-field cron expressions with crontab(5) meaning, computed by APScheduler's ``CronTrigger``.

APScheduler 3.x reads a crontab's day-of-week numbers with 0 = Monday and
combines a restricted day of month with a restricted day of week by AND.
crontab(5) has 0 (and 7) = Sunday and fires when *either* day field matches.
This module translates, so ``0 9 * * 1-5`` means weekdays, as every crontab
user expects. Fire times are pure functions of (expression, zone, instant).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DOW_ITEM = re.compile(r"^(?:(\*)|([a-z0-9]+)(?:-([a-z0-9]+))?)(?:/(\d+))?$")
# Widening windows for finding the latest fire time: few steps, few fires per step.
_LOOKBACKS = tuple(timedelta(seconds=s) for s in (60, 3600, 86400, 31 * 86400, 366 * 86400, 5 * 366 * 86400))


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``, or ``ValueError`` saying what is allowed."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone name, e.g. UTC, Europe/Paris, America/New_York") from None


def _day_number(token: str) -> int:
    if token in _DAY_NAMES:
        return _DAY_NAMES.index(token)
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    raise ValueError(f"{token!r} is not a day of the week (0-7 or sun-sat)")


def _weekdays(field: str) -> set[int]:
    """crontab day numbers (0 = Sunday) that a day-of-week field selects."""
    days: set[int] = set()
    for item in field.lower().split(","):
        match = _DOW_ITEM.match(item)
        if not match:
            raise ValueError(f"{item!r} is not a day-of-week item (e.g. 1-5, mon-fri, */2)")
        star, first, last, step = match.groups()
        if step is not None and int(step) == 0:
            raise ValueError("a step of 0 never advances")
        if star:
            start, end = 0, 6
        else:
            start = _day_number(first)
            # Sunday closes a range as 7 (mon-sun, 1-7); a lone start with a step runs to Saturday.
            end = (7 if last in ("7", "sun") else _day_number(last)) if last else 6 if step else start
        if end < start:
            raise ValueError(f"{item!r} is a range that runs backwards")
        days.update(day % 7 for day in range(start, end + 1, int(step or 1)))
    return days


def _apscheduler_weekdays(field: str) -> str:
    # APScheduler counts from Monday: name the days instead of translating numbers.
    return ",".join(_DAY_NAMES[day] for day in sorted(_weekdays(field)))


@dataclass(frozen=True)
class CronSchedule:
    """When a five-field cron expression fires, in one time zone."""

    triggers: tuple[CronTrigger, ...]

    @classmethod
    def parse(cls, expression: str, zone_name: str = "UTC") -> CronSchedule:
        tz = zone(zone_name)
        text = MACROS.get(expression.strip().lower(), expression)
        fields = text.split()
        if len(fields) != 5:
            raise ValueError(
                f"{expression!r} is not a five-field cron expression "
                '(minute hour day-of-month month day-of-week, e.g. "0 9 * * 1-5")'
            )
        minute, hour, day, month, weekday = fields
        try:
            both_days = day != "*" and weekday != "*"
            days = [(day, "*"), ("*", weekday)] if both_days else [(day, weekday)]
            triggers = tuple(
                CronTrigger(
                    minute=minute,
                    hour=hour,
                    day=d,
                    month=month,
                    day_of_week=_apscheduler_weekdays(w) if w != "*" else "*",
                    timezone=tz,
                )
                for d, w in days
            )
        except ValueError as exc:
            raise ValueError(f"{expression!r} is not a valid cron expression: {exc}") from None
        return cls(triggers)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after ``moment``, in UTC."""
        after = moment + timedelta(microseconds=1)
        times = [t.get_next_fire_time(None, after) for t in self.triggers]
        found = [time.astimezone(UTC) for time in times if time is not None]
        return min(found) if found else None

    def latest(self, at_or_before: datetime, after: datetime | None = None) -> datetime | None:
        """The last fire time in (``after``, ``at_or_before``], or ``None`` when there is none."""
        for lookback in _LOOKBACKS:
            start = at_or_before - lookback
            if after is not None and start < after:
                start = after
            found = self._last_between(start, at_or_before)
            if found is not None or (after is not None and start == after):
                return found
        return None

    def _last_between(self, start: datetime, end: datetime) -> datetime | None:
        last: datetime | None = None
        moment = self.next_after(start)
        while moment is not None and moment <= end:
            last = moment
            moment = self.next_after(moment)
        return last
