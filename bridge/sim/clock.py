"""Time for the simulator: an injectable clock and RFC3339 (de)serialisation.

Real Oz timestamps can tie and have microsecond resolution, so the clock can be
frozen to make several runs share exactly the same instant.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

__all__ = [
    "Clock",
    "SimClock",
    "format_ts",
    "parse_ts",
    "parse_ts_ns",
    "to_ns",
]

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"([Zz]|[+-]\d{2}:\d{2})$"
)


class Clock(Protocol):
    def now(self) -> datetime:
        """Return the current time as an aware UTC datetime."""
        ...


class SimClock:
    """Wall-clock time that tests can freeze, set, and advance.

    Unfrozen, it follows the system clock shifted by an offset so that
    ``advance`` also works for a live clock (e.g. to reveal late updates).
    """

    def __init__(self, frozen_at: datetime | None = None) -> None:
        self._frozen: datetime | None = _utc(frozen_at) if frozen_at else None
        self._offset = timedelta(0)

    def now(self) -> datetime:
        if self._frozen is not None:
            return self._frozen
        return datetime.now(UTC) + self._offset

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def freeze(self, at: datetime | None = None) -> datetime:
        self._frozen = _utc(at) if at is not None else self.now()
        return self._frozen

    def unfreeze(self) -> None:
        # Keep continuity: resume from the frozen instant rather than jumping.
        if self._frozen is not None:
            self._offset = self._frozen - datetime.now(UTC)
        self._frozen = None

    def set(self, at: datetime) -> None:
        if self._frozen is not None:
            self._frozen = _utc(at)
        else:
            self._offset = _utc(at) - datetime.now(UTC)

    def advance(self, seconds: float) -> datetime:
        delta = timedelta(seconds=seconds)
        if self._frozen is not None:
            self._frozen += delta
        else:
            self._offset += delta
        return self.now()

    def reset(self) -> None:
        self._frozen = None
        self._offset = timedelta(0)


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
    return dt.astimezone(UTC)


def format_ts(dt: datetime) -> str:
    """Serialise like Go's RFC3339Nano: UTC ``Z`` and trailing zeros trimmed.

    The variable-length fraction is deliberate: it is what the real server
    emits and it breaks clients that compare timestamps as strings.
    """
    dt = _utc(dt)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        base += "." + f"{dt.microsecond:06d}".rstrip("0")
    return base + "Z"


def parse_ts_ns(value: str) -> int:
    """Parse a strict RFC3339 timestamp to integer nanoseconds since the epoch.

    Nanoseconds keep query bounds exact even when a client sends more than
    microsecond precision. A missing offset is rejected, as RFC3339 requires
    one (``datetime.isoformat()`` of a naive datetime omits it).
    """
    m = _RFC3339.match(value)
    if m is None:
        raise ValueError(f"not an RFC3339 timestamp: {value!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac, offset = m.group(7) or "", m.group(8)
    tz = UTC
    if offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    whole = datetime(year, month, day, hour, minute, second, tzinfo=tz)
    nanos = int(frac.ljust(9, "0")) if frac else 0
    return to_ns(whole) + nanos


def parse_ts(value: str) -> datetime:
    """Parse RFC3339 to an aware UTC datetime (sub-microsecond digits dropped)."""
    ns = parse_ts_ns(value)
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)


def to_ns(dt: datetime) -> int:
    delta = _utc(dt) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
