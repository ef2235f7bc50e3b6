"""``/readyz``: whether this replica is fit for traffic, and in words what slows or stops polling.

Ready means the database answers and the last poll succeeded within four
poll intervals (on a follower: the leader's last poll, read from the store).
Four is the poller lease (three intervals) and one more: a leader that dies
keeps its lease until it runs out, a follower takes it over then and polls,
and until that poll every replica only has the dead leader's to go by.
Whatever slows polling without stopping it (a large clock skew, a poll cut
short at the page limit, a backoff under way) is listed in ``warnings``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.leadership import LEASE_INTERVALS
from bridge.store.runs import PollState

STALE_INTERVALS = LEASE_INTERVALS + 1  # poll intervals without a successful poll before not ready
SKEW_WARNING = 30.0  # seconds of API clock skew worth telling an operator about


def skew_warning(skew: float | None) -> str | None:
    if skew is None or abs(skew) < SKEW_WARNING:
        return None
    direction = "behind" if skew < 0 else "ahead of"
    return (
        f"the Oz API's clock is {abs(skew):.0f} s {direction} this replica's; "
        "the bridge takes time from the API's answers, so polling is unaffected"
    )


@dataclass(frozen=True)
class PollStatus:
    """What the polling replica knows about its own polls, beyond what the store keeps."""

    failures: int = 0
    problem: str | None = None  # the reason code of the latest failure
    error: str | None = None  # the same, in words
    backoff: float | None = None  # seconds until the next try, while backing off
    clock_skew: float | None = None  # API clock minus ours, seconds
    cut_short: str | None = None  # why the latest successful poll stopped before the end

    def warnings(self) -> list[str]:
        found = [self.cut_short, skew_warning(self.clock_skew)]
        if self.backoff is not None and self.error:
            found.append(f"polling is backing off for {self.backoff:.1f} s after {self.failures} failure(s)")
        return [text for text in found if text]


def assess(
    state: PollState | None, status: PollStatus | None, leading: bool, now: datetime, interval: float
) -> tuple[bool, dict[str, Any]]:
    """(ready, detail) from the stored poll state and, on the polling replica, its own status."""
    local = status if leading and status is not None else PollStatus()
    error = local.error or (state.last_problem if state else None)
    skew = local.clock_skew if local.clock_skew is not None else (state.clock_offset if state else None)
    detail: dict[str, Any] = {"role": "leader" if leading else "follower"}
    if skew is not None:
        detail["api_clock_skew_seconds"] = round(skew, 1)
    warnings = local.warnings() if leading else [w for w in [skew_warning(skew)] if w]
    if warnings:
        detail["warnings"] = warnings
    if local.problem:
        detail["poll_problem"] = local.problem
    if local.backoff is not None:
        detail["poll_backoff_seconds"] = round(local.backoff, 3)
    last = state.last_success_at if state else None
    if last is None:
        return False, {**detail, "reason": "no successful poll yet", "poll_error": error}
    age = (now - last).total_seconds()
    detail.update(last_poll_success=last.isoformat(), last_poll_age_seconds=round(age, 3))
    if age > STALE_INTERVALS * interval:
        reason = f"no successful poll within {STALE_INTERVALS} poll intervals"
        return False, {**detail, "reason": reason, "poll_error": error}
    return True, detail
