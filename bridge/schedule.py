"""Pure: (a run's stored snapshot, what was already told, the clock, the settings) → events from the clock.

Nothing here reads a clock or a database; the scheduled job passes both in, so
the same inputs always give the same events and ids, which is what makes a
restart, a second replica or a retried transaction harmless.

- ``run.still_blocked``: reminder *n* is due ``n * blocked_every`` after the
  ``updated_at`` of a BLOCKED snapshot. Only the latest due one is told, so a
  bridge that was down for hours sends one reminder, not a burst. Any update
  of the run (it moved) starts the count again from its new ``updated_at``.
- ``run.stuck``: once per quiet spell, ``stuck_after`` after the ``updated_at``
  of a QUEUED/PENDING/CLAIMED/INPROGRESS snapshot.
- ``run.cost_exceeded``: once per run, when a snapshot's cost first exceeds the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bridge.diff import parse_time
from bridge.events import (
    RUN_COST_EXCEEDED,
    RUN_STILL_BLOCKED,
    RUN_STUCK,
    Event,
    JSONDict,
    event_id,
    rfc3339,
    run_cost_usd,
)
from bridge.settings import Settings

ACTIVE_STATES = frozenset({"QUEUED", "PENDING", "CLAIMED", "INPROGRESS"})
BLOCKED = "BLOCKED"


@dataclass(frozen=True)
class TimePolicy:
    """The settings that decide time-based events, in seconds and dollars; 0 switches one off."""

    blocked_every: float = 0.0
    stuck_after: float = 0.0
    run_usd: float = 0.0

    @classmethod
    def of(cls, settings: Settings) -> TimePolicy:
        return cls(settings.reminders.blocked_every, settings.reminders.stuck_after, settings.budgets.run_usd)

    @property
    def enabled(self) -> bool:
        return bool(self.blocked_every or self.stuck_after or self.run_usd)

    def fingerprint(self) -> str:
        """Changes whenever a change of settings may make a quiet run due earlier or later."""
        return f"blocked_every={self.blocked_every:g};stuck_after={self.stuck_after:g};run_usd={self.run_usd:g}"


@dataclass(frozen=True)
class StoredRun:
    """A run snapshot as the poller stored it: the ``runs`` row."""

    run_id: str
    state: str
    updated_at: datetime
    run: JSONDict


@dataclass(frozen=True)
class Watch:
    """What the clock has told about one run, and when it next needs a look.

    ``reviewed_updated_at`` is the snapshot the counters refer to; a newer
    snapshot resets them (the run moved). ``cost_told`` lasts for the run's life.
    """

    run_id: str
    reviewed_updated_at: datetime | None = None
    reminders_sent: int = 0
    stuck_told: bool = False
    cost_told: bool = False
    due_at: datetime | None = None


@dataclass(frozen=True)
class Review:
    events: list[Event]
    watch: Watch


def review(watch: Watch, stored: StoredRun, as_of: datetime, policy: TimePolicy, detected_at: str) -> Review:
    """The events due for ``stored`` at ``as_of``, and the watch to keep until its next look."""
    if watch.reviewed_updated_at != stored.updated_at:
        watch = replace(watch, reviewed_updated_at=stored.updated_at, reminders_sent=0, stuck_told=False)
    events: list[Event] = []
    if policy.run_usd and not watch.cost_told and run_cost_usd(stored.run) > policy.run_usd:
        events.append(_event(stored, RUN_COST_EXCEEDED, detected_at))
        watch = replace(watch, cost_told=True)
    due_at: datetime | None = None
    if stored.state == BLOCKED and policy.blocked_every:
        told, due_at = _reminder(watch, stored, as_of, policy.blocked_every)
        if told > watch.reminders_sent:
            events.append(_event(stored, RUN_STILL_BLOCKED, detected_at, rfc3339(stored.updated_at), str(told)))
            watch = replace(watch, reminders_sent=told)
    elif stored.state in ACTIVE_STATES and policy.stuck_after and not watch.stuck_told:
        quiet_until = stored.updated_at + timedelta(seconds=policy.stuck_after)
        if as_of >= quiet_until:
            events.append(_event(stored, RUN_STUCK, detected_at, rfc3339(stored.updated_at)))
            watch = replace(watch, stuck_told=True)
        else:
            due_at = quiet_until
    return Review(events, replace(watch, due_at=due_at))


def _reminder(watch: Watch, stored: StoredRun, as_of: datetime, every: float) -> tuple[int, datetime]:
    """(the number of the latest reminder due at ``as_of``, when the one after it is due)."""
    blocked_for = (as_of - stored.updated_at).total_seconds()
    due = max(watch.reminders_sent, math.floor(blocked_for / every) if blocked_for > 0 else 0)
    return due, stored.updated_at + timedelta(seconds=(due + 1) * every)


def _event(stored: StoredRun, kind: str, detected_at: str, *ident: str) -> Event:
    return Event(
        id=event_id(stored.run_id, kind, *ident),
        type=kind,
        run_id=stored.run_id,
        created_at=detected_at,
        run=stored.run,
    )


def quiet_for(event: Event) -> float | None:
    """Seconds the run had gone without an update when ``event`` was made (time-based events)."""
    try:
        return (parse_time(event.created_at) - parse_time(event.fields.get("updated_at"))).total_seconds()
    except ValueError:
        return None


def span_text(seconds: float) -> str:
    """``1h``, ``1h 30m``, ``2d 3h``, ``45s``: the largest unit and the next one, rounded down
    (tenths under ten seconds, for short intervals such as the demo's)."""
    if 0 < seconds < 10:
        return f"{math.floor(seconds * 10) / 10:g}s"
    whole = max(0, int(seconds))
    units = ((86400, "d"), (3600, "h"), (60, "m"), (1, "s"))
    index = next(i for i, (size, _) in enumerate(units) if whole >= size or size == 1)
    size, unit = units[index]
    text = f"{whole // size}{unit}"
    if size > 1:
        smaller, smaller_unit = units[index + 1]
        rest = whole % size // smaller
        text += f" {rest}{smaller_unit}" if rest else ""
    return text
