"""Which reads a tick makes, and what they prove was read: the cursor and the sweep mark, in API time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.poll_plan import JUST_BEFORE, Read, ReadOutcome, plan_reads, settled_at, swept_after

T = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LOOKBACK, SWEEP = 30.0, 15.0


def s(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def test_an_idle_tick_is_one_read_from_the_cursors_own_instant() -> None:
    # The sweep mark is past the cursor: nothing behind the cursor is unsettled.
    assert plan_reads(s(0), s(100), s(200), LOOKBACK, SWEEP) == [Read(s(0) - JUST_BEFORE)]


def test_a_sweep_is_not_due_until_sweep_seconds_of_time_have_settled_behind_the_mark() -> None:
    # settled = now - lookback - 1 s (the Date header's resolution)
    assert plan_reads(s(100), s(50), s(95), LOOKBACK, SWEEP) == [Read(s(100) - JUST_BEFORE)]


def test_when_the_settled_instant_is_past_the_cursor_one_read_from_the_mark_does_both() -> None:
    assert plan_reads(s(100), s(50), s(140), LOOKBACK, SWEEP) == [Read(s(50), sweep=True)]


def test_a_sweep_waits_for_an_unsettled_burst_ahead_of_it_up_to_a_lookback() -> None:
    # Cursor at 100 (a burst), settled at 79: waiting lets the sweep merge with the cursor read later.
    assert plan_reads(s(100), s(50), s(110), LOOKBACK, SWEEP) == [Read(s(100) - JUST_BEFORE)]


def test_a_sweep_that_cannot_wait_stops_at_the_settled_instant_and_the_cursor_read_follows() -> None:
    # Constant activity keeps the cursor ahead of the settled instant: the sweep goes alone, bounded.
    reads = plan_reads(s(300), s(200), s(280), LOOKBACK, SWEEP)
    assert reads == [Read(s(200), until=settled_at(s(280), LOOKBACK), sweep=True), Read(s(300) - JUST_BEFORE)]


def test_a_complete_read_from_behind_the_mark_moves_it_to_what_its_answer_proves_settled() -> None:
    outcome = ReadOutcome(Read(s(50), sweep=True), complete=True, answered_at=s(140))
    assert swept_after(s(50), [outcome], LOOKBACK) == s(140 - 31)


def test_a_sweep_read_moves_the_mark_no_further_than_it_read() -> None:
    sweep = ReadOutcome(Read(s(200), until=s(249), sweep=True), complete=True, answered_at=s(290))
    cursor_read = ReadOutcome(Read(s(300) - JUST_BEFORE), complete=True, answered_at=s(290))
    assert swept_after(s(200), [sweep, cursor_read], LOOKBACK) == s(249)  # the gap up to the cursor stays


def test_an_unfinished_read_or_one_that_began_past_the_mark_proves_nothing() -> None:
    cut = ReadOutcome(Read(s(50), sweep=True), complete=False, answered_at=s(140))
    ahead = ReadOutcome(Read(s(100) - JUST_BEFORE), complete=True, answered_at=s(140))
    assert swept_after(s(50), [cut, ahead], LOOKBACK) == s(50)


def test_the_mark_never_moves_back() -> None:
    early = ReadOutcome(Read(s(0)), complete=True, answered_at=s(10))
    assert swept_after(s(50), [early], LOOKBACK) == s(50)
