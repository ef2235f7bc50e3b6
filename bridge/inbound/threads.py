"""Is this Slack thread one of the bridge's? The cheap question asked at intake, from memory when it can be.

Only "is it a bridge thread" is answered here, never which run a reply is for:
that is decided from the store when the reply is acted on (``slack_threads.
owner_of``), because a thread's owner changes (a Retry makes the new run its
owner). The answers and how long they are remembered:

- ``ours``: remembered for good. A bridge thread stays one (its owner may change).
- ``foreign``: remembered for ``FOREIGN_TTL`` only. A thread becomes the bridge's
  when a mention in it asks for a run, or when a run created elsewhere names it in
  its Slack metadata; another replica may do either a moment after this one
  looked. Within this process the answer is corrected at once (``learn``).
- ``maybe``: a root or DM status message is being posted in that channel right
  now and its record is not there yet; asked again each time.

Questions that miss the memory are batched: the requests arriving together
share one indexed read, never a write.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Generic, Literal, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbound.batching import Batcher
from bridge.store import slack_threads

Whose = Literal["ours", "maybe", "foreign"]
ThreadKey = tuple[str, str]  # (channel id, thread ts)
V = TypeVar("V")
# A marker older than this is a post that failed or a process that died: its retry looks up
# the root in Slack's history before posting, so a root it finds is recorded then.
MARKER_WINDOW = timedelta(minutes=10)
# How long "no bridge thread" is believed without asking again: the longest a reply in a
# thread another replica has just made the bridge's can be missed here.
FOREIGN_TTL = timedelta(seconds=30)


class _Bounded(OrderedDict[ThreadKey, V], Generic[V]):
    """Least recently used entries leave first; forgetting only costs another read."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit

    def remember(self, key: ThreadKey, value: V) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self._limit:
            self.popitem(last=False)


class ThreadDirectory:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        capacity: int = 50_000,
        batch_size: int = 100,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._ours: _Bounded[bool] = _Bounded(capacity)
        self._foreign_until: _Bounded[datetime] = _Bounded(capacity)
        self._lookups: Batcher[ThreadKey, Whose] = Batcher(self._lookup, max_size=batch_size)

    async def whose(self, channel: str, thread_ts: str) -> Whose:
        key = (channel, thread_ts)
        if key in self._ours:
            return "ours"
        until = self._foreign_until.get(key)
        if until is not None:
            if self._clock() < until:
                return "foreign"
            del self._foreign_until[key]
        return await self._lookups.submit(key)

    def learn(self, channel: str, thread_ts: str) -> None:
        """This process just made the thread a bridge thread (a mention stored, a placement planned)."""
        key = (channel, thread_ts)
        self._foreign_until.pop(key, None)
        self._ours.remember(key, True)

    async def _lookup(self, keys: list[ThreadKey]) -> list[Whose]:
        now = self._clock()
        async with self._engine.connect() as conn:
            found = await slack_threads.bridge_threads(conn, sorted(set(keys)), now - MARKER_WINDOW)
        answers: list[Whose] = []
        for key in keys:
            if key in found.threads:
                self._ours.remember(key, True)
                answers.append("ours")
            elif key[0] in found.marker_channels or None in found.marker_channels:
                answers.append("maybe")
            else:
                self._foreign_until.remember(key, now + FOREIGN_TTL)
                answers.append("foreign")
        return answers
