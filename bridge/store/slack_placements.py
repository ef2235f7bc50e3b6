"""Slack placements: where each run is told, read by outbound and inbound alike.

A placement is one (run, place): the place is the target's channel as the
config names it, ``@creator`` (a DM) or ``@thread`` (the thread a run was
started in). It says which thread the run's replies go to, which message is
its status message, whether the run owns that thread, and whether it is muted.

Posting a status message is crash-safe: a marker row (``status_ts`` null) is
written first, so a retry after a crash looks in Slack before posting again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Row, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.tables import slack_placements

_p = slack_placements.c
Kind = Literal["root", "started", "parent", "dm"]
CREATOR_PLACE = "@creator"  # the run's creator, in a direct message
THREAD_PLACE = "@thread"  # the thread named by the run's metadata (runs started from Slack)
# Kinds whose status message is the top of its own thread (it *is* the thread).
THREAD_TOP_KINDS = frozenset({"root", "dm"})


@dataclass(frozen=True)
class PlannedPlacement:
    """Where a run is about to be told, before its status message exists."""

    run_id: str
    place: str
    kind: Kind
    channel_id: str | None
    thread_ts: str | None  # None for roots and DMs: their status message starts the thread
    owns_thread: bool
    parent_run_id: str | None = None


@dataclass(frozen=True)
class SlackPlacement:
    run_id: str
    place: str
    kind: str
    channel_id: str | None
    thread_ts: str | None
    status_ts: str | None
    owns_thread: bool
    parent_run_id: str | None
    state: str | None
    muted: bool
    muted_until: datetime | None
    created_at: datetime
    claimed_by: str | None
    status_event_id: str | None
    shown_updated_at: datetime | None

    @property
    def is_posted(self) -> bool:
        """The status message exists (this row is no longer a marker)."""
        return self.channel_id is not None and self.status_ts is not None and self.thread_ts is not None

    def is_muted(self, now: datetime) -> bool:
        return self.muted and (self.muted_until is None or now < self.muted_until)


def _placement(row: Row[Any]) -> SlackPlacement:
    return SlackPlacement(**dict(row._mapping))


async def _first(conn: AsyncConnection, *where: Any) -> SlackPlacement | None:
    row = (await conn.execute(select(slack_placements).where(*where).limit(1))).first()
    return _placement(row) if row else None


async def load(conn: AsyncConnection, run_id: str, place: str) -> SlackPlacement | None:
    return await _first(conn, _p.run_id == run_id, _p.place == place)


async def for_run(conn: AsyncConnection, run_id: str) -> list[SlackPlacement]:
    rows = await conn.execute(select(slack_placements).where(_p.run_id == run_id).order_by(_p.place))
    return [_placement(row) for row in rows]


# ---- lookups for inbound: a message names the run, never a value the client sends ----------------


async def by_status_message(conn: AsyncConnection, channel_id: str, ts: str) -> SlackPlacement | None:
    """The placement whose status message is ``ts`` in ``channel_id`` (a button was clicked on it)."""
    return await _first(conn, _p.channel_id == channel_id, _p.status_ts == ts)


async def thread_owner(
    conn: AsyncConnection, channel_id: str, thread_ts: str, *, planned: bool = False
) -> SlackPlacement | None:
    """The run a reply in thread ``thread_ts`` belongs to: its owner (the newest, after a retry).

    With ``planned``, an owner whose status message is still to be posted counts too
    (a started thread's placement knows its thread before its status message exists).
    """
    query = (
        select(slack_placements)
        .where(_p.channel_id == channel_id, _p.thread_ts == thread_ts, _p.owns_thread.is_(True))
        .order_by(_p.created_at.desc(), _p.run_id.desc())
        .limit(1)
    )
    if not planned:
        query = query.where(_p.status_ts.is_not(None))
    row = (await conn.execute(query)).first()
    return _placement(row) if row else None


async def owned_threads(conn: AsyncConnection, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Those of ``pairs`` (channel id, thread ts) that some run's placement owns; a started
    thread is owned from the moment its placement is planned."""
    if not pairs:
        return set()
    wanted = or_(*(and_(_p.channel_id == channel, _p.thread_ts == ts) for channel, ts in pairs))
    query = select(_p.channel_id, _p.thread_ts).where(wanted, _p.owns_thread.is_(True)).distinct()
    return {(str(row.channel_id), str(row.thread_ts)) for row in await conn.execute(query)}


async def marker_channels(conn: AsyncConnection, channel_ids: Sequence[str], since: datetime) -> frozenset[str | None]:
    """Channels (by id; None for one known only by name) where a status message has been about to be
    posted since ``since``: a thread there may become a bridge thread any moment."""
    in_channels = or_(_p.channel_id.is_(None), _p.channel_id.in_(list(channel_ids)))
    query = select(_p.channel_id).where(_p.status_ts.is_(None), in_channels, _p.created_at >= since).distinct()
    return frozenset((await conn.execute(query)).scalars())


async def in_thread(conn: AsyncConnection, channel_id: str, thread_ts: str) -> list[SlackPlacement]:
    """Every run told in the thread: its owner and its guests (child runs)."""
    query = select(slack_placements).where(_p.channel_id == channel_id, _p.thread_ts == thread_ts)
    return [_placement(row) for row in await conn.execute(query.order_by(_p.created_at))]


async def children_states(conn: AsyncConnection, parent_run_id: str) -> dict[str, str]:
    """run id → state of the parent's child runs told in Slack (anywhere)."""
    query = select(_p.run_id, _p.state).where(_p.parent_run_id == parent_run_id, _p.state.is_not(None))
    return {row.run_id: row.state for row in await conn.execute(query.order_by(_p.created_at))}


async def known_channel_id(conn: AsyncConnection, place: str) -> str | None:
    """The id Slack gave ``place`` on an earlier post, if any (targets may name channels)."""
    query = select(_p.channel_id).where(_p.place == place, _p.kind == "root", _p.channel_id.is_not(None)).limit(1)
    return (await conn.execute(query)).scalar_one_or_none()


# ---- posting a status message, crash-safely ---------------------------------------------------------


async def reserve(
    conn: AsyncConnection, planned: PlannedPlacement, *, claimed_by: str, event_id: str | None, now: datetime
) -> bool:
    """Leave the "status message being posted" marker; ``False`` when a row already exists."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(slack_placements)
        .values(
            run_id=planned.run_id,
            place=planned.place,
            kind=planned.kind,
            channel_id=planned.channel_id,
            thread_ts=planned.thread_ts,
            owns_thread=planned.owns_thread,
            parent_run_id=planned.parent_run_id,
            muted=False,
            created_at=now,
            claimed_by=claimed_by,
            status_event_id=event_id,
        )
        .on_conflict_do_nothing(index_elements=["run_id", "place"])
    )
    return (await conn.execute(statement)).rowcount == 1


async def take_over(
    conn: AsyncConnection, marker: SlackPlacement, *, claimed_by: str, event_id: str, now: datetime
) -> bool:
    """Claim a marker whose poster is gone; ``False`` when someone else changed it first."""
    same_claimer = _p.claimed_by.is_(None) if marker.claimed_by is None else _p.claimed_by == marker.claimed_by
    statement = (
        update(slack_placements)
        .where(_p.run_id == marker.run_id, _p.place == marker.place, _p.status_ts.is_(None))
        .where(_p.created_at == marker.created_at, same_claimer)
        .values(claimed_by=claimed_by, created_at=now, status_event_id=event_id)
    )
    return (await conn.execute(statement)).rowcount == 1


async def record_status(
    conn: AsyncConnection,
    run_id: str,
    place: str,
    *,
    channel_id: str,
    status_ts: str,
    shown_updated_at: datetime | None,
    state: str | None,
) -> None:
    """The status message is in Slack: remember where, and which run update it shows.

    Roots and DMs start their own thread, so their thread is the status message.
    """
    thread_top = _p.kind.in_(sorted(THREAD_TOP_KINDS))
    values = {
        "channel_id": channel_id,
        "status_ts": status_ts,
        "shown_updated_at": shown_updated_at,
        "state": state,
    }
    base = update(slack_placements).where(_p.run_id == run_id, _p.place == place, _p.status_ts.is_(None))
    await conn.execute(base.where(thread_top).values(**values, thread_ts=status_ts))
    await conn.execute(base.where(~thread_top).values(**values))


async def reset_status(
    conn: AsyncConnection, placement: SlackPlacement, *, claimed_by: str, event_id: str, now: datetime
) -> bool:
    """Turn a status message that vanished from Slack back into a marker, so it is posted once more."""
    values: dict[str, Any] = {
        "status_ts": None,
        "claimed_by": claimed_by,
        "created_at": now,
        "status_event_id": event_id,
        "shown_updated_at": None,
    }
    if placement.kind in THREAD_TOP_KINDS:
        values["thread_ts"] = None  # a new root starts a new thread
    statement = (
        update(slack_placements)
        .where(_p.run_id == placement.run_id, _p.place == placement.place, _p.status_ts == placement.status_ts)
        .values(**values)
    )
    return (await conn.execute(statement)).rowcount == 1


async def record_shown(
    conn: AsyncConnection, run_id: str, place: str, shown_updated_at: datetime, state: str | None
) -> None:
    """The status message now shows the run as of ``shown_updated_at`` (never moves back)."""
    newer = or_(_p.shown_updated_at.is_(None), _p.shown_updated_at <= shown_updated_at)
    await conn.execute(
        update(slack_placements)
        .where(and_(_p.run_id == run_id, _p.place == place, newer))
        .values(shown_updated_at=shown_updated_at, state=state)
    )


# ---- mute ------------------------------------------------------------------------------------------


async def mute(conn: AsyncConnection, run_id: str, place: str, until: datetime | None) -> bool:
    """Stop thread replies for ``run_id`` at ``place`` until ``until`` (``None``: until unmuted).

    ``False`` when the run is not told there.
    """
    statement = (
        update(slack_placements).where(_p.run_id == run_id, _p.place == place).values(muted=True, muted_until=until)
    )
    return (await conn.execute(statement)).rowcount == 1


async def unmute(conn: AsyncConnection, run_id: str, place: str) -> bool:
    statement = (
        update(slack_placements).where(_p.run_id == run_id, _p.place == place).values(muted=False, muted_until=None)
    )
    return (await conn.execute(statement)).rowcount == 1
