"""Slack threads as the inbound side asks for them: "which run does this message belong to?"

A thin view over ``slack_placements`` and ``slack_started`` (see there for the
model). ``find_by_root`` answers for a message that is a run's status message (a
button was clicked on it) or the top of a thread a run owns; ``owner_of`` for a
reply posted in a thread; ``bridge_threads`` for the cheap question asked at
intake, many threads at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store import slack_placements, slack_started
from bridge.store.slack_placements import THREAD_PLACE, PlannedPlacement, SlackPlacement


@dataclass(frozen=True)
class SlackThread:
    """A run's place in Slack: replies with ``thread_ts == ts`` in ``channel_id`` go to its thread."""

    run_id: str
    channel: str  # the place: a channel as the target names it (C0123…, #alerts), @creator or @thread
    channel_id: str
    ts: str  # the thread's ts (for a root, the root itself)


def _thread(placement: SlackPlacement | None) -> SlackThread | None:
    if placement is None or not placement.is_posted:
        return None
    assert placement.channel_id is not None and placement.thread_ts is not None
    return SlackThread(placement.run_id, placement.place, placement.channel_id, placement.thread_ts)


async def get(conn: AsyncConnection, run_id: str, channel: str) -> SlackThread | None:
    """Where ``run_id`` is told at ``channel``; ``None`` while there is nothing (or only a marker)."""
    return _thread(await slack_placements.load(conn, run_id, channel))


async def find_by_root(conn: AsyncConnection, channel_id: str, ts: str) -> SlackThread | None:
    """The run whose status message is ``ts``, else the run owning the thread ``ts`` starts."""
    found = await slack_placements.by_status_message(conn, channel_id, ts)
    if found is None:
        found = await slack_placements.thread_owner(conn, channel_id, ts)
    return _thread(found)


@dataclass(frozen=True)
class ThreadLookup:
    """Which of the asked (channel id, thread ts) pairs are bridge threads, and where one may be about to appear."""

    threads: set[tuple[str, str]]  # the pairs that are bridge threads
    marker_channels: frozenset[str | None]  # channel ids of recent markers; None: a channel not known by id


async def bridge_threads(
    conn: AsyncConnection, pairs: Sequence[tuple[str, str]], markers_since: datetime
) -> ThreadLookup:
    """The bridge threads among ``pairs``, and the channels of markers left since ``markers_since``.

    A thread is the bridge's once a run was asked for in it (a mention, recorded with its
    inbox row) or a placement owns it. A root or DM status message is announced by a
    marker before it is posted, so a pair that is none of these is no bridge thread now.
    """
    owned = await slack_placements.owned_threads(conn, pairs)
    started = await slack_started.known(conn, [pair for pair in pairs if pair not in owned])
    markers = await slack_placements.marker_channels(conn, sorted({channel for channel, _ in pairs}), markers_since)
    return ThreadLookup(owned | started, markers)


@dataclass(frozen=True)
class ThreadOwner:
    """The run a reply in a thread belongs to, from the bridge's records alone."""

    run_id: str
    placement: SlackPlacement | None  # None while the run is known only as started there


async def owner_of(conn: AsyncConnection, channel_id: str, thread_ts: str) -> ThreadOwner | None:
    """The newest run told in (or started in) the thread: after a Retry, the new run.

    A placement says so once the run has been seen by the poller; before that, a run the
    bridge just started there (from a mention or a Retry) is known from ``slack_started``.
    """
    placed = await slack_placements.thread_owner(conn, channel_id, thread_ts, planned=True)
    started = await slack_started.load(conn, (channel_id, thread_ts))
    if started is None or started.run_id is None or started.started_at is None:
        return ThreadOwner(placed.run_id, placed) if placed is not None else None
    if placed is not None and (placed.run_id == started.run_id or placed.created_at >= started.started_at):
        return ThreadOwner(placed.run_id, placed)
    return ThreadOwner(started.run_id, await slack_placements.load(conn, started.run_id, THREAD_PLACE))


async def reserve(
    conn: AsyncConnection,
    run_id: str,
    channel: str,
    *,
    channel_id: str | None,
    claimed_by: str,
    event_id: str,
    now: datetime,
) -> bool:
    """Leave the marker of a root about to be posted in ``channel``."""
    planned = PlannedPlacement(run_id, channel, "root", channel_id, None, owns_thread=True)
    return await slack_placements.reserve(conn, planned, claimed_by=claimed_by, event_id=event_id, now=now)


async def record_root(
    conn: AsyncConnection,
    run_id: str,
    channel: str,
    *,
    channel_id: str,
    ts: str,
    shown_updated_at: datetime | None,
) -> None:
    """The root is in Slack: it is both the status message and the thread."""
    await slack_placements.record_status(
        conn, run_id, channel, channel_id=channel_id, status_ts=ts, shown_updated_at=shown_updated_at, state=None
    )
