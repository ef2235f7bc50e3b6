"""Pure: which ``GET /agent/runs`` reads one tick makes, and what they prove was seen.

Two marks, both in the API's time, drive it:

- the cursor: the newest ``updated_at`` processed. An ordinary read asks for
  everything updated at or after it (at: a run tied with the cursor on a page
  not read yet is not lost). An idle tick is that one small request.
- ``swept_through``: every update stamped at or before it has been read. An
  update can become visible up to ``lookback`` after its ``updated_at``, so a
  read answered at API time A proves everything up to A - lookback was seen,
  if it started at or before ``swept_through``.

A sweep re-reads only what lies between ``swept_through`` and the newest
settled instant (now - lookback), once. It is due every ``sweep`` seconds of
settled time; while the cursor is still ahead of the settled instant (a burst
that has not settled yet) it waits up to ``lookback`` longer, so that it can
become one read with the ordinary one instead of an extra request. When it
cannot wait, it stops paging as soon as it passes the settled instant and the
ordinary read from the cursor does the rest. Either way each stretch of time
is re-read exactly once, after it has settled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bridge.api_time import DATE_RESOLUTION

# Asking for updated_after one microsecond before the cursor includes the cursor's own instant.
JUST_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True)
class Read:
    """Page through runs updated after ``updated_after``; stop once past ``until`` (None: to the end)."""

    updated_after: datetime
    until: datetime | None = None
    sweep: bool = False


@dataclass(frozen=True)
class ReadOutcome:
    read: Read
    complete: bool  # reached the end, or passed ``until``
    answered_at: datetime | None  # the API's time at its first answer (its Date header)


def settled_at(api_now: datetime, lookback: float) -> datetime:
    """The newest instant whose updates are all visible by ``api_now``."""
    return api_now - timedelta(seconds=lookback) - DATE_RESOLUTION


def plan_reads(cursor: datetime, swept: datetime, api_now: datetime, lookback: float, sweep: float) -> list[Read]:
    """The reads of one tick: from the cursor, preceded by a sweep read when one is due."""
    ordinary = Read(cursor - JUST_BEFORE)
    settled = settled_at(api_now, lookback)
    behind = (settled - swept).total_seconds()
    if swept >= cursor or behind < sweep:
        return [ordinary]  # nothing behind the cursor to re-read, or not due yet
    if settled >= cursor:
        return [Read(swept, sweep=True)]  # one read from the sweep mark covers the cursor's too
    if behind < sweep + lookback:
        return [ordinary]  # wait for the burst ahead to settle, then sweep in the same read
    return [Read(swept, until=settled, sweep=True), ordinary]


def swept_after(swept: datetime, outcomes: Sequence[ReadOutcome], lookback: float) -> datetime:
    """``swept_through`` once these reads are done: extended by each complete read that began behind it."""
    for outcome in outcomes:
        if not outcome.complete or outcome.answered_at is None or outcome.read.updated_after > swept:
            continue  # unfinished, or a gap before it was never re-read
        covered = settled_at(outcome.answered_at, lookback)
        if outcome.read.until is not None:
            covered = min(covered, outcome.read.until)
        swept = max(swept, covered)
    return swept
