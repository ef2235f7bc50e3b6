"""The Oz API's clock, as its own answers tell it (the ``Date`` header of each response).

Run timestamps are written by the API's clock, so every comparison with one
(the start point, sweep windows, "this is in the future") is made in API time.
The bridge's own clock only measures how far apart the two are: ``offset`` is
API time minus bridge time, from the latest answer that carried a ``Date``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

# ``Date`` has whole seconds and is floored: the API's true time at the answer
# lies in [Date, Date + 1 s).
DATE_RESOLUTION = timedelta(seconds=1)


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP-date as an aware UTC datetime, or None when absent or unreadable."""
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class ApiClock:
    """API time, estimated from the bridge's clock and the offset measured on the last answer."""

    def __init__(self, local: Callable[[], datetime]) -> None:
        self._local = local
        self.offset: timedelta | None = None  # None until an answer carried a readable Date

    def local_now(self) -> datetime:
        return self._local()

    def now(self) -> datetime:
        """The API's time now, as best known (the bridge's own clock before any answer)."""
        return self._local() + (self.offset or timedelta(0))

    def observe(self, date_header: str | None, sent_at: datetime, received_at: datetime) -> datetime:
        """Learn from one answer; returns the API's time when it answered (lower bound)."""
        stamped = parse_http_date(date_header)
        if stamped is None:
            return self.now() - DATE_RESOLUTION
        # The answer was stamped somewhere between sending and receiving; take the middle,
        # and the middle of the Date header's second.
        midway = sent_at + (received_at - sent_at) / 2
        offset = stamped + DATE_RESOLUTION / 2 - midway
        # Within the header's resolution no skew can be measured: the best estimate is none, rather
        # than a half-second of noise that would make the bridge's own clock look wrong.
        self.offset = offset if abs(offset) > DATE_RESOLUTION else timedelta(0)
        return stamped

    @property
    def skew_seconds(self) -> float | None:
        """API clock minus bridge clock, in seconds (negative: the API is behind)."""
        return None if self.offset is None else self.offset.total_seconds()
