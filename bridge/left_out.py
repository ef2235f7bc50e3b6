"""Telling what the poller left out: every record counted, each one logged now and then.

A record the API keeps sending broken (a run stamped in 2099 sits in every
listing) would otherwise log the same line every tick; one line per (reason,
run) per window says it, with how many repeats went unlogged in between.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.records import LeftOut

log = get_logger("bridge.poller")

LOG_WINDOW = 600.0  # seconds between two log lines about the same record
REMEMBERED = 4096  # records whose last log line is remembered (oldest forgotten first)


class LeftOutReport:
    def __init__(
        self,
        metrics: Metrics,
        window: float = LOG_WINDOW,
        remembered: int = REMEMBERED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._window = window
        self._remembered = remembered
        self._clock = clock
        self._last: OrderedDict[tuple[str, str | None, str], tuple[float, int]] = OrderedDict()

    def __call__(self, items: Iterable[LeftOut]) -> None:
        for item in items:
            self._metrics.malformed_runs.labels(item.reason).inc()
            self._maybe_log(item)

    def _maybe_log(self, item: LeftOut) -> None:
        key = (item.reason, item.run_id, item.detail if item.run_id is None else "")
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self._window:
            self._last[key] = (last[0], last[1] + 1)
            return
        log.warning(
            "record left out of the poll",
            run_id=item.run_id,
            reason=item.reason,
            problem=item.detail,
            unlogged_repeats=last[1] if last is not None else 0,
        )
        self._last[key] = (now, 0)
        self._last.move_to_end(key)
        while len(self._last) > self._remembered:
            self._last.popitem(last=False)
