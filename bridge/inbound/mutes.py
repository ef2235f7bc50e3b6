"""``/mute``, ``/mute 2h`` and ``/unmute`` in a run's thread, and the ``Mute``/``Unmute`` buttons.

A mute is stored on the run's placement there (``slack_placements.mute``): the
thread replies stop (a child told as a guest in the thread is silenced with
it), the status message still updates in place and shows ``Unmute``. The
command is acknowledged with a reaction and never sent to the agent.
Durations read like the rest of the settings (``90s``, ``30m``, ``2h``, ``1d``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from slack_sdk.errors import SlackApiError
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.events import JSONDict
from bridge.inbound.outcome import Outcome
from bridge.logs import get_logger
from bridge.settings import parse_duration
from bridge.store import runs as run_store
from bridge.store import slack_placements
from bridge.store.slack_placements import SlackPlacement

log = get_logger("bridge.inbound.mutes")
LONGEST_MUTE = timedelta(days=365)
MUTED_REACTION, UNMUTED_REACTION = "mute", "loud_sound"
NOT_YET = (
    "There is nothing to mute yet: the run's status message is not in this thread yet. Please try again in a moment."
)


@dataclass(frozen=True)
class Mute:
    duration: timedelta | None  # None: until unmuted


@dataclass(frozen=True)
class Unmute:
    pass


@dataclass(frozen=True)
class UnreadableMute:
    said: str  # what followed /mute


ThreadCommand = Mute | Unmute | UnreadableMute


def thread_command_of(text: str) -> ThreadCommand | None:
    """``/mute``, ``/mute DURATION`` or ``/unmute`` (a reply's text, mention removed); else None."""
    words = text.split()
    if not words or words[0] not in ("/mute", "/unmute"):
        return None
    if words[0] == "/unmute":
        return Unmute() if len(words) == 1 else None  # "/unmute the logs" is a message to the agent
    if len(words) == 1:
        return Mute(None)
    said = " ".join(words[1:])
    try:
        seconds = parse_duration(said)
    except ValueError:
        return UnreadableMute(said)
    if not 0 < seconds <= LONGEST_MUTE.total_seconds():
        return UnreadableMute(said)
    return Mute(timedelta(seconds=seconds))


def unreadable_text(command: UnreadableMute) -> str:
    said = command.said[:100].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        f"I couldn't read “{said}” as a duration, so nothing was muted. Use `/mute` (until `/unmute`), "
        "or a duration up to a year: `/mute 30m`, `/mute 2h`, `/mute 1d`."
    )


def _until_text(until: datetime | None) -> str:
    if until is None:
        return "until someone unmutes it"
    # Slack shows the time in each reader's own zone; the fallback is UTC.
    fallback = until.isoformat(timespec="minutes")
    return f"until <!date^{int(until.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


class Redraw(Protocol):
    async def redraw(self, run: JSONDict) -> None:
        """Show ``run`` as it is now in every status message it has."""


class Mutes:
    """Mutes and unmutes placements, then redraws the run's status messages (best effort)."""

    def __init__(self, engine: AsyncEngine, slack: Redraw, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._slack = slack
        self._clock = clock or (lambda: datetime.now(UTC))

    async def apply(self, placement: SlackPlacement | None, command: Mute | Unmute) -> Outcome:
        """Store the change on ``placement`` (the run's place in this thread)."""
        if placement is None:
            return Outcome("refused", NOT_YET)
        async with self._engine.begin() as conn:
            if isinstance(command, Unmute):
                await slack_placements.unmute(conn, placement.run_id, placement.place)
                return Outcome("unmuted", "Unmuted.", placement.run_id)
            until = self._clock() + command.duration if command.duration is not None else None
            await slack_placements.mute(conn, placement.run_id, placement.place, until)
        return Outcome("muted", f"Muted {_until_text(until)}.", placement.run_id)

    async def redraw(self, run_id: str) -> None:
        """The status messages show Mute or Unmute as stored now; a failure waits for the next event."""
        async with self._engine.connect() as conn:
            run = await run_store.load_run(conn, run_id)
        if run is None:
            return  # not polled yet: its first status message is drawn from the stored placement
        try:
            await self._slack.redraw(run)
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            log.warning("status message not redrawn after a mute change", run_id=run_id, error=error)
