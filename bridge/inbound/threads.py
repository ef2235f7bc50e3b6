"""Is this Slack thread one of the bridge's? Answered from memory when it can be, exactly.

Both answers are remembered for good, and both stay true on every replica:
a message that is a run's root stays that run's root, and a thread that is no
bridge thread once a reply in it exists never becomes one (the bridge records
a marker before it posts any root, so a root that exists is either recorded or
announced). Only "a root may be on its way" (a recent marker in that channel)
is asked again each time. Questions that miss the memory are batched: the
requests arriving together share one indexed read, never a write.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbound.batching import Batcher
from bridge.store import slack_threads

Whose = Literal["ours", "maybe", "foreign"]
ThreadKey = tuple[str, str]  # (channel id, root ts)
# A marker older than this is a post that failed or a process that died: its retry looks up
# the root in Slack's history before posting, so a root it finds is recorded then.
MARKER_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class ThreadAnswer:
    whose: Whose
    run_id: str | None = None


class _Bounded(OrderedDict[ThreadKey, str]):
    """Least recently used entries leave first; forgetting only costs another read."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit

    def remember(self, key: ThreadKey, value: str) -> None:
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
        self._ours = _Bounded(capacity)
        self._foreign = _Bounded(capacity)
        self._lookups: Batcher[ThreadKey, ThreadAnswer] = Batcher(self._lookup, max_size=batch_size)

    async def whose(self, channel: str, thread_ts: str) -> ThreadAnswer:
        key = (channel, thread_ts)
        run_id = self._ours.get(key)
        if run_id is not None:
            return ThreadAnswer("ours", run_id)
        if key in self._foreign:
            return ThreadAnswer("foreign")
        return await self._lookups.submit(key)

    def remember_root(self, channel: str, ts: str, run_id: str) -> None:
        self._ours.remember((channel, ts), run_id)

    async def _lookup(self, keys: list[ThreadKey]) -> list[ThreadAnswer]:
        since = self._clock() - MARKER_WINDOW
        async with self._engine.connect() as conn:
            found = await slack_threads.lookup_roots(conn, sorted(set(keys)), since)
        answers = []
        for key in keys:
            run_id = found.roots.get(key)
            if run_id is not None:
                self._ours.remember(key, run_id)
                answers.append(ThreadAnswer("ours", run_id))
            elif key[0] in found.marker_channels or None in found.marker_channels:
                answers.append(ThreadAnswer("maybe"))
            else:
                self._foreign.remember(key, "")
                answers.append(ThreadAnswer("foreign"))
        return answers
