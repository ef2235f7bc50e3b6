"""Pure: when a digest is due, and what it says about the runs in its window.

**The window** of a digest sent for scheduled time *T* is (*T* - ``window``, *T*].
A run is **in the window** when it existed by *T* (``created_at`` ≤ *T*) and was
last updated after the window began (``updated_at`` > *T* - ``window``): it was
alive during the window and something happened to it since. Counts use each
run's stored snapshot (its state as last seen). A run is listed under
``failed`` when its snapshot is FAILED or ERROR and that last update, its end,
falls inside the window.

**When**: at each scheduled time, once. After a gap (the bridge was down across
one or more scheduled times) only the latest missed time is made up, never a
burst; the first time a digest is seen, its earlier times were never missed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bridge.cron import CronSchedule, zone
from bridge.diff import parse_time
from bridge.events import DIGEST, Event, JSONDict, digest_queue, event_id, rfc3339, run_cost_usd

FAILED_STATES = frozenset({"FAILED", "ERROR"})
MAX_FAILED = 50  # listed in full; ``failed_total`` counts them all
NO_AGENT = "(none)"


def due_time(schedule: CronSchedule, last_scheduled: datetime, now: datetime) -> datetime | None:
    """The scheduled time to send now: the latest one in (``last_scheduled``, ``now``], if any."""
    return schedule.latest(now, after=last_scheduled)


def first_baseline(schedule: CronSchedule, now: datetime) -> datetime:
    """Where a digest seen for the first time starts: its latest time so far counts as handled."""
    return schedule.latest(now) or now


@dataclass(frozen=True)
class DigestWindow:
    name: str
    timezone: str
    start: datetime
    end: datetime

    @classmethod
    def ending(cls, name: str, timezone: str, scheduled_at: datetime, window: float) -> DigestWindow:
        return cls(name, timezone, scheduled_at - timedelta(seconds=window), scheduled_at)


@dataclass
class DigestTally:
    """Runs of one window, added one by one (the store streams them), summed up at the end."""

    window: DigestWindow
    runs: int = 0
    cost_usd: float = 0.0
    by_state: Counter[str] = field(default_factory=Counter)
    by_agent: Counter[str] = field(default_factory=Counter)
    failed: list[JSONDict] = field(default_factory=list)
    failed_total: int = 0

    def add(self, run: JSONDict, updated_at: datetime) -> None:
        if not self.includes(run, updated_at):
            return
        state = str(run.get("state"))
        self.runs += 1
        self.cost_usd += run_cost_usd(run)
        self.by_state[state] += 1
        self.by_agent[_agent(run)] += 1
        if state in FAILED_STATES and updated_at <= self.window.end:
            self.failed_total += 1
            if len(self.failed) < MAX_FAILED:
                self.failed.append(_failure(run))

    def includes(self, run: JSONDict, updated_at: datetime) -> bool:
        if updated_at <= self.window.start:
            return False
        try:
            return parse_time(run.get("created_at")) <= self.window.end
        except ValueError:
            return updated_at <= self.window.end  # no usable created_at: go by what is known

    def summary(self) -> JSONDict:
        return {
            "name": self.window.name,
            "timezone": self.window.timezone,
            "window_start": rfc3339(self.window.start),
            "window_end": rfc3339(self.window.end),
            "runs": self.runs,
            "by_state": dict(sorted(self.by_state.items())),
            "failed": self.failed,
            "failed_total": self.failed_total,
            "cost_usd": round(self.cost_usd, 6),
            "by_agent": dict(sorted(self.by_agent.items(), key=lambda item: (-item[1], item[0]))),
        }


def _agent(run: JSONDict) -> str:
    config = run.get("agent_config")
    name = config.get("name") if isinstance(config, dict) else None
    return str(name) if name else NO_AGENT


def _failure(run: JSONDict) -> JSONDict:
    status = run.get("status_message")
    return {
        "run_id": str(run.get("run_id")),
        "title": run.get("title"),
        "session_link": run.get("session_link"),
        "status_message": status if isinstance(status, dict) else None,
    }


def local_window(summary: JSONDict) -> tuple[datetime, datetime]:
    """The window's start and end in the digest's own time zone, for people to read."""
    try:
        tz = zone(str(summary.get("timezone") or "UTC"))
    except ValueError:
        tz = zone("UTC")
    return parse_time(summary["window_start"]).astimezone(tz), parse_time(summary["window_end"]).astimezone(tz)


def digest_event(summary: JSONDict, detected_at: str) -> Event:
    """The ``digest`` event of one scheduled time; its id is stable per (digest name, scheduled time)."""
    name = str(summary["name"])
    return Event(
        id=event_id(digest_queue(name), DIGEST, str(summary["window_end"])),
        type=DIGEST,
        run_id=digest_queue(name),
        created_at=detected_at,
        run=None,
        digest=summary,
    )
