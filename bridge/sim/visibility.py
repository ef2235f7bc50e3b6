"""Which snapshot of each run API clients see now, kept in (updated_at, run_id) order.

Listing is the simulator's hot path: a poller asks "runs updated after T, oldest
first" every tick. Keeping each run's visible snapshot in a sorted index makes
that a bisect plus a walk over one page, instead of filtering and sorting every
run on every request. Visibility changes with the clock (delayed snapshots), so
snapshots waiting to surface sit in a heap and join the index when they are due.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["HasSnapshots", "OrderKey", "Snapshot", "VisibleRuns"]

OrderKey = tuple[int, str]  # (updated_at in ns, run_id)


@dataclass(eq=False)
class Snapshot:
    data: dict[str, Any]
    ts: dict[str, int]
    visible_at_ns: int
    hidden: bool


class HasSnapshots(Protocol):
    @property
    def snapshots(self) -> Sequence[Snapshot]: ...


def current_view(snapshots: Sequence[Snapshot], now_ns: int) -> Snapshot | None:
    """The newest snapshot that is visible at ``now_ns``."""
    for snap in reversed(snapshots):
        if not snap.hidden and snap.visible_at_ns <= now_ns:
            return snap
    return None


class VisibleRuns:
    """The visible snapshot of every run, and their order by ``updated_at``."""

    def __init__(self) -> None:
        self._views: dict[str, Snapshot] = {}
        self._keys: dict[str, OrderKey] = {}
        self._order: list[OrderKey] = []
        self._pending: list[tuple[int, int, str]] = []  # (visible_at_ns, tie-breaker, run_id)
        self._ties = itertools.count()
        self._as_of_ns = 0

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def update(self, run_id: str, snapshots: Sequence[Snapshot], now_ns: int) -> None:
        """Recompute one run's view after its snapshots changed."""
        for snap in snapshots:
            if not snap.hidden and snap.visible_at_ns > now_ns:
                heapq.heappush(self._pending, (snap.visible_at_ns, next(self._ties), run_id))
        self._place(run_id, current_view(snapshots, now_ns))

    def refresh(self, runs: Mapping[str, HasSnapshots], now_ns: int) -> None:
        """Bring the views up to ``now_ns``: delayed snapshots that are due surface now."""
        if now_ns < self._as_of_ns:
            self._rebuild(runs, now_ns)  # the clock went back: visibility can un-happen
            return
        self._as_of_ns = now_ns
        while self._pending and self._pending[0][0] <= now_ns:
            _, _, run_id = heapq.heappop(self._pending)
            if run_id in runs:
                self._place(run_id, current_view(runs[run_id].snapshots, now_ns))

    def view(self, run_id: str) -> Snapshot | None:
        return self._views.get(run_id)

    def views(self) -> list[Snapshot]:
        return list(self._views.values())

    def walk(self, after: OrderKey | None, ascending: bool) -> Iterator[Snapshot]:
        """Visible snapshots strictly after ``after`` in the given direction."""
        order = self._order
        if ascending:
            start = 0 if after is None else bisect.bisect_right(order, after)
            positions: Iterator[int] = iter(range(start, len(order)))
        else:
            stop = len(order) if after is None else bisect.bisect_left(order, after)
            positions = iter(range(stop - 1, -1, -1))
        for position in positions:
            yield self._views[order[position][1]]

    def _rebuild(self, runs: Mapping[str, HasSnapshots], now_ns: int) -> None:
        self.clear()
        self._as_of_ns = now_ns
        for run_id, run in runs.items():
            self.update(run_id, run.snapshots, now_ns)

    def _place(self, run_id: str, view: Snapshot | None) -> None:
        old = self._keys.pop(run_id, None)
        if old is not None:
            del self._order[bisect.bisect_left(self._order, old)]
            del self._views[run_id]
        if view is not None:
            key = (view.ts["updated_at"], run_id)
            bisect.insort(self._order, key)
            self._keys[run_id] = key
            self._views[run_id] = view
