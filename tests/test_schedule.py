"""Pure schedule logic: which time-based events a stored snapshot earns at a given moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.events import Event, event_id
from bridge.schedule import Review, StoredRun, TimePolicy, Watch, quiet_for, review, span_text
from tests.conftest import make_run

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
POLICY = TimePolicy(blocked_every=30 * 60, stuck_after=2 * 3600, run_usd=5.0)


def stored(state: str = "BLOCKED", updated_at: datetime = T0, **run: Any) -> StoredRun:
    text = updated_at.isoformat().replace("+00:00", "Z")
    return StoredRun("run-1", state, updated_at, make_run("run-1", state, updated_at=text, **run))


def at(moment: datetime, watch: Watch, snapshot: StoredRun, policy: TimePolicy = POLICY) -> Review:
    return review(watch, snapshot, moment, policy, moment.isoformat())


def play(snapshot: StoredRun, moments: list[datetime], policy: TimePolicy = POLICY) -> tuple[list[Event], Watch]:
    watch, events = Watch("run-1"), []
    for moment in moments:
        result = at(moment, watch, snapshot, policy)
        events += result.events
        watch = result.watch
    return events, watch


def test_a_blocked_run_gets_its_first_reminder_one_interval_after_it_blocked() -> None:
    early = at(T0 + 29 * MINUTE, Watch("run-1"), stored())
    assert early.events == [] and early.watch.due_at == T0 + 30 * MINUTE
    due = at(T0 + 30 * MINUTE, early.watch, stored())
    assert [e.type for e in due.events] == ["run.still_blocked"]
    assert due.events[0].id == event_id("run-1", "run.still_blocked", "2026-01-05T09:00:00Z", "1")
    assert due.events[0].previous_state is None and due.events[0].run == stored().run
    assert due.watch.reminders_sent == 1 and due.watch.due_at == T0 + 60 * MINUTE


def test_reminders_repeat_every_interval_and_each_is_told_once() -> None:
    moments = [T0 + n * 10 * MINUTE for n in range(1, 13)]  # every 10 minutes for two hours
    events, watch = play(stored(), moments)
    assert [e.id for e in events] == [
        event_id("run-1", "run.still_blocked", "2026-01-05T09:00:00Z", str(n)) for n in (1, 2, 3, 4)
    ]
    assert watch.due_at == T0 + 150 * MINUTE


def test_after_a_long_gap_only_the_latest_due_reminder_is_told() -> None:
    events, watch = play(stored(), [T0 + 30 * MINUTE, T0 + 5 * 60 * MINUTE + 5 * MINUTE])
    assert [e.id for e in events] == [
        event_id("run-1", "run.still_blocked", "2026-01-05T09:00:00Z", "1"),
        event_id("run-1", "run.still_blocked", "2026-01-05T09:00:00Z", "10"),
    ]
    assert watch.reminders_sent == 10


def test_an_update_while_blocked_starts_the_count_again() -> None:
    _, watch = play(stored(), [T0 + 30 * MINUTE])
    later = stored(updated_at=T0 + 40 * MINUTE)
    assert at(T0 + 60 * MINUTE, watch, later).events == []  # only 20 minutes since the run moved
    again = at(T0 + 70 * MINUTE, watch, later)
    assert [e.id for e in again.events] == [event_id("run-1", "run.still_blocked", "2026-01-05T09:40:00Z", "1")]


def test_a_run_that_left_blocked_gets_no_reminder() -> None:
    _, watch = play(stored(), [T0 + 30 * MINUTE])
    moved = stored("INPROGRESS", updated_at=T0 + 35 * MINUTE)
    result = at(T0 + 60 * MINUTE, watch, moved)
    assert result.events == [] and result.watch.due_at == T0 + 35 * MINUTE + 2 * 60 * MINUTE


@pytest.mark.parametrize("state", ["QUEUED", "PENDING", "CLAIMED", "INPROGRESS"])
def test_a_quiet_unfinished_run_is_stuck_once_per_quiet_spell(state: str) -> None:
    events, watch = play(stored(state), [T0 + 119 * MINUTE, T0 + 120 * MINUTE, T0 + 300 * MINUTE])
    assert [e.type for e in events] == ["run.stuck"]
    assert events[0].id == event_id("run-1", "run.stuck", "2026-01-05T09:00:00Z")
    assert watch.due_at is None
    next_spell = stored(state, updated_at=T0 + 301 * MINUTE)
    assert at(T0 + 421 * MINUTE, watch, next_spell).events[0].type == "run.stuck"


@pytest.mark.parametrize("state", ["BLOCKED", "SUCCEEDED", "FAILED", "ERROR", "CANCELLED"])
def test_blocked_and_ended_runs_are_never_stuck(state: str) -> None:
    events, _ = play(stored(state), [T0 + 600 * MINUTE], TimePolicy(stuck_after=60))
    assert events == []


def usage(**costs: float) -> dict[str, Any]:
    return {"request_usage": costs}


def test_cost_over_the_budget_is_told_once_for_the_life_of_the_run() -> None:
    under = stored("INPROGRESS", **usage(inference_cost_usd=3.0, compute_cost_usd=2.0))
    assert at(T0, Watch("run-1"), under, TimePolicy(run_usd=5.0)).events == []  # equal is not over
    over = stored("INPROGRESS", T0 + MINUTE, **usage(inference_cost_usd=3.0, compute_cost_usd=2.5))
    first = at(T0 + MINUTE, Watch("run-1"), over, TimePolicy(run_usd=5.0))
    assert [e.type for e in first.events] == ["run.cost_exceeded"]
    assert first.events[0].id == event_id("run-1", "run.cost_exceeded")
    ended = stored("SUCCEEDED", T0 + 9 * MINUTE, **usage(inference_cost_usd=30.0))
    assert at(T0 + 9 * MINUTE, first.watch, ended, TimePolicy(run_usd=5.0)).events == []


def test_cost_counts_only_usd_figures_that_are_numbers() -> None:
    odd = usage(inference_cost=900.0, platform_cost_usd=float("nan"), compute_cost_usd=-4.0)
    odd["request_usage"]["inference_cost_usd"] = "9"
    assert at(T0, Watch("run-1"), stored("INPROGRESS", **odd), TimePolicy(run_usd=1.0)).events == []
    assert at(T0, Watch("run-1"), stored("INPROGRESS", request_usage=None), TimePolicy(run_usd=1.0)).events == []


def test_a_run_can_be_over_budget_and_blocked_in_one_review() -> None:
    snapshot = stored(**usage(inference_cost_usd=9.0))
    events, _ = play(snapshot, [T0 + 30 * MINUTE])
    assert [e.type for e in events] == ["run.cost_exceeded", "run.still_blocked"]


def test_with_everything_off_nothing_is_due() -> None:
    result = at(T0 + 900 * MINUTE, Watch("run-1"), stored(**usage(inference_cost_usd=99.0)), TimePolicy())
    assert result.events == [] and result.watch.due_at is None


def test_the_same_inputs_give_the_same_events() -> None:
    first = at(T0 + 31 * MINUTE, Watch("run-1"), stored(), POLICY)
    second = at(T0 + 45 * MINUTE, Watch("run-1"), stored(), POLICY)
    assert [e.id for e in first.events] == [e.id for e in second.events]


def test_quiet_for_and_span_text_say_how_long_a_run_waited() -> None:
    event = at(T0 + 90 * MINUTE, Watch("run-1"), stored(), POLICY).events[0]
    assert quiet_for(event) == 5400
    spans = [span_text(s) for s in (0, 0.56, 9.99, 45, 125, 3600, 5400, 90061)]
    assert spans == ["0s", "0.5s", "9.9s", "45s", "2m 5s", "1h", "1h 30m", "1d 1h"]
