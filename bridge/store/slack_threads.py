"""Slack threads: which message is the root of which run's thread in which channel.

One row per (run, channel) — the primary key is what keeps a run to one root
per channel, even when two targets share that channel. A row whose ``ts`` is
still null is a marker left *before* posting the root: whoever finds it knows a
root may already exist in Slack and looks there before posting another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.tables import slack_threads

_t = slack_threads.c


@dataclass(frozen=True)
class SlackThread:
    """A posted root: replies with ``thread_ts == ts`` in ``channel_id`` belong to ``run_id``."""

    run_id: str
    channel: str  # as the target names it: an id (C0123…) or a name (#alerts)
    channel_id: str
    ts: str


@dataclass(frozen=True)
class ThreadRow:
    """The whole row, marker state included, as the notifier needs it."""

    run_id: str
    channel: str
    channel_id: str | None
    ts: str | None
    created_at: datetime
    claimed_by: str | None
    root_event_id: str | None
    shown_updated_at: datetime | None

    @property
    def thread(self) -> SlackThread | None:
        if self.channel_id is None or self.ts is None:
            return None
        return SlackThread(self.run_id, self.channel, self.channel_id, self.ts)


def _row(row: Row[Any]) -> ThreadRow:
    return ThreadRow(
        row.run_id,
        row.channel,
        row.channel_id,
        row.ts,
        row.created_at,
        row.claimed_by,
        row.root_event_id,
        row.shown_updated_at,
    )


async def load(conn: AsyncConnection, run_id: str, channel: str) -> ThreadRow | None:
    row = (await conn.execute(select(slack_threads).where(_t.run_id == run_id, _t.channel == channel))).first()
    return _row(row) if row else None


async def get(conn: AsyncConnection, run_id: str, channel: str) -> SlackThread | None:
    """The posted root of ``run_id`` in ``channel``; ``None`` while there is none (or only a marker)."""
    row = await load(conn, run_id, channel)
    return row.thread if row else None


async def find_by_root(conn: AsyncConnection, channel_id: str, ts: str) -> SlackThread | None:
    """The bridge thread whose root is message ``ts`` in ``channel_id``, if it is one."""
    row = (await conn.execute(select(slack_threads).where(_t.channel_id == channel_id, _t.ts == ts))).first()
    return _row(row).thread if row else None


@dataclass(frozen=True)
class RootLookup:
    """Which of the asked (channel id, ts) pairs are roots, and where a root may be about to appear."""

    roots: dict[tuple[str, str], str]  # (channel id, ts) → run id
    marker_channels: frozenset[str | None]  # channel ids of recent markers; None: a channel not known by id


async def lookup_roots(conn: AsyncConnection, pairs: Sequence[tuple[str, str]], markers_since: datetime) -> RootLookup:
    """The roots among ``pairs``, and the channels of markers left since ``markers_since``.

    A root is always either recorded or announced by a marker before it is posted,
    so a pair that is neither is no bridge thread, now or later.
    """
    roots: dict[tuple[str, str], str] = {}
    if pairs:
        wanted = or_(*(and_(_t.channel_id == channel, _t.ts == ts) for channel, ts in pairs))
        for row in await conn.execute(select(_t.channel_id, _t.ts, _t.run_id).where(wanted)):
            roots[(str(row.channel_id), str(row.ts))] = str(row.run_id)
    channels = sorted({channel for channel, _ in pairs})
    in_channels = or_(_t.channel_id.is_(None), _t.channel_id.in_(channels))
    markers = select(_t.channel_id).where(_t.ts.is_(None), in_channels, _t.created_at >= markers_since).distinct()
    return RootLookup(roots, frozenset((await conn.execute(markers)).scalars()))


async def known_channel_id(conn: AsyncConnection, channel: str) -> str | None:
    """The id Slack gave ``channel`` on an earlier post, if any (targets may name channels)."""
    query = select(_t.channel_id).where(_t.channel == channel, _t.channel_id.is_not(None)).limit(1)
    return (await conn.execute(query)).scalar_one_or_none()


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
    """Leave the "root being posted" marker; ``False`` when a row (marker or root) already exists."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(slack_threads)
        .values(
            run_id=run_id,
            channel=channel,
            channel_id=channel_id,
            created_at=now,
            claimed_by=claimed_by,
            root_event_id=event_id,
        )
        .on_conflict_do_nothing(index_elements=["run_id", "channel"])
    )
    return (await conn.execute(statement)).rowcount == 1


async def take_over(conn: AsyncConnection, marker: ThreadRow, *, claimed_by: str, event_id: str, now: datetime) -> bool:
    """Claim a marker whose poster is gone; ``False`` when someone else changed it first."""
    same_claimer = _t.claimed_by.is_(None) if marker.claimed_by is None else _t.claimed_by == marker.claimed_by
    statement = (
        update(slack_threads)
        .where(
            _t.run_id == marker.run_id,
            _t.channel == marker.channel,
            _t.ts.is_(None),
            _t.created_at == marker.created_at,
            same_claimer,
        )
        .values(claimed_by=claimed_by, created_at=now, root_event_id=event_id)
    )
    return (await conn.execute(statement)).rowcount == 1


async def reset_root(
    conn: AsyncConnection, thread: SlackThread, *, claimed_by: str, event_id: str, now: datetime
) -> bool:
    """Turn a root that vanished from Slack back into a marker, so a new root can be posted once."""
    statement = (
        update(slack_threads)
        .where(_t.run_id == thread.run_id, _t.channel == thread.channel, _t.ts == thread.ts)
        .values(ts=None, claimed_by=claimed_by, created_at=now, root_event_id=event_id, shown_updated_at=None)
    )
    return (await conn.execute(statement)).rowcount == 1


async def record_root(
    conn: AsyncConnection,
    run_id: str,
    channel: str,
    *,
    channel_id: str,
    ts: str,
    shown_updated_at: datetime | None,
) -> None:
    """The root is in Slack: remember where, and which run update it shows."""
    values = {"channel_id": channel_id, "ts": ts, "shown_updated_at": shown_updated_at}
    await conn.execute(
        update(slack_threads).where(_t.run_id == run_id, _t.channel == channel, _t.ts.is_(None)).values(**values)
    )


async def record_shown(conn: AsyncConnection, run_id: str, channel: str, shown_updated_at: datetime) -> None:
    """The root now shows the run as of ``shown_updated_at`` (never moves back)."""
    newer = or_(_t.shown_updated_at.is_(None), _t.shown_updated_at < shown_updated_at)
    await conn.execute(
        update(slack_threads)
        .where(and_(_t.run_id == run_id, _t.channel == channel, newer))
        .values(shown_updated_at=shown_updated_at)
    )
