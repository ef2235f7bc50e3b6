"""Where a run is told at a Slack target: a root, its started thread, its parent's thread, a DM.

The decision is made once, before the run's status message is posted, and
stored as a placement (``bridge.store.slack_placements``); every later event
and every inbound reply goes by what was stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.events import Event, JSONDict
from bridge.notifiers.slack_people import CreatorDirectory
from bridge.routing import RunTarget
from bridge.store import runs as run_store
from bridge.store import slack_placements
from bridge.store.slack_placements import CREATOR_PLACE, THREAD_PLACE, Kind, PlannedPlacement, SlackPlacement

THREAD_TARGET = "@slack-thread"  # reserved target name: runs told in the thread their metadata names
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_MESSAGE_TS = re.compile(r"^\d{9,12}\.\d{1,9}$")
# A child's first event may be delivered before its parent's status message exists (they
# are separate queues): wait for it this long before telling the child on its own.
PARENT_WAIT = timedelta(seconds=60)


def started_thread(run: JSONDict) -> tuple[str, str] | None:
    """(channel id, thread ts) from the run's ``slack_channel``/``slack_thread_ts`` metadata, if valid."""
    metadata = run.get("metadata")
    if not isinstance(metadata, dict):
        return None
    channel, ts = metadata.get("slack_channel"), metadata.get("slack_thread_ts")
    if not (isinstance(channel, str) and isinstance(ts, str)):
        return None
    return (channel, ts) if CHANNEL_ID.match(channel) and _MESSAGE_TS.match(ts) else None


def thread_run_target() -> RunTarget:
    """The built-in target every event of a run with Slack thread metadata reaches."""
    return RunTarget(THREAD_TARGET, lambda event: started_thread(event.fields) is not None)


@dataclass(frozen=True)
class Skip:
    """The run is not told at this target, for good (e.g. a creator Slack does not know)."""

    reason: str


@dataclass(frozen=True)
class Wait:
    reason: str
    seconds: float


def _parent_id(run: JSONDict) -> str | None:
    parent = run.get("parent_run_id")
    return parent if isinstance(parent, str) and parent else None


def _age(event: Event, now: datetime) -> timedelta:
    try:
        detected = datetime.fromisoformat(event.created_at.replace("Z", "+00:00"))
    except ValueError:
        return PARENT_WAIT
    return now - (detected if detected.tzinfo else detected.replace(tzinfo=UTC))


class Placer:
    def __init__(self, engine: AsyncEngine, people: CreatorDirectory, *, children_in_thread: bool, place: str) -> None:
        self._engine = engine
        self._people = people
        self._children_in_thread = children_in_thread
        self.place = place

    async def plan(self, event: Event) -> PlannedPlacement | Skip | Wait:
        run, parent = event.fields, _parent_id(event.fields)
        if self.place == THREAD_PLACE:
            return self._in_started_thread(event.run_id, run, parent)
        if parent is not None and self._children_in_thread:
            guest = await self._in_parent_thread(event, parent)
            if guest is not None:
                return guest
        if self.place == CREATOR_PLACE:
            channel_id = await self._people.dm_channel(run)
            if channel_id is None:
                return Skip("the run's creator has no Slack account to send a DM to")
            return PlannedPlacement(event.run_id, self.place, "dm", channel_id, None, True, parent)
        channel_id = await self._channel_id()
        own_thread = started_thread(run)
        if own_thread is not None and own_thread[0] == channel_id:
            # Its own thread is in this channel already (the built-in target tells it there): one place per channel.
            return Skip("the run is told in its own Slack thread in this channel")
        return PlannedPlacement(event.run_id, self.place, "root", channel_id, None, True, parent)

    def _in_started_thread(self, run_id: str, run: JSONDict, parent: str | None) -> PlannedPlacement | Skip:
        found = started_thread(run)
        if found is None:
            return Skip("the run's Slack thread metadata is missing or invalid")
        channel_id, thread_ts = found
        # Children inherit their parent's metadata: the thread is the parent's, they are guests in it.
        kind: Kind = "parent" if parent is not None else "started"
        return PlannedPlacement(run_id, self.place, kind, channel_id, thread_ts, parent is None, parent)

    async def _in_parent_thread(self, event: Event, parent: str) -> PlannedPlacement | Wait | None:
        async with self._engine.connect() as conn:
            home = await slack_placements.load(conn, parent, self.place)
            parent_known = home is not None or await run_store.load_run(conn, parent) is not None
        if home is not None and home.is_posted:
            return _guest_of(event.run_id, self.place, home)
        if parent_known and _age(event, datetime.now(UTC)) < PARENT_WAIT:
            return Wait("waiting for the parent run's status message", 1.0)
        return None

    async def _channel_id(self) -> str | None:
        if CHANNEL_ID.match(self.place):
            return self.place
        async with self._engine.connect() as conn:
            return await slack_placements.known_channel_id(conn, self.place)


def _guest_of(run_id: str, place: str, home: SlackPlacement) -> PlannedPlacement:
    return PlannedPlacement(run_id, place, "parent", home.channel_id, home.thread_ts, False, home.run_id)
