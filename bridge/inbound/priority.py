"""Answer Slack first, act after: the inbox worker steps aside while requests are coming in.

Slack wants its answer within 3 s and retries otherwise; a follow-up sent a little later
harms nobody. Acting on one reply (the follow-up, two reactions, three writes) costs several
times what answering a request does, and all of it shares one event loop. So while requests
are arriving (one is being answered, or one was within ``calm_after``), the worker's steps run
one at a time, each after the answers in progress (waiting at most ``max_wait``): under a
flood the worker slows down instead of queueing in front of the answers, and it never stops.
When the requests calm down it runs at its full concurrency again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator


class AnswersFirst:
    def __init__(
        self, max_wait: float = 0.05, calm_after: float = 0.25, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_wait = max_wait
        self._calm_after = calm_after
        self._clock = clock
        self._answering = 0
        self._last_answer = -calm_after
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._one_step = asyncio.Lock()

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Around the handling of one request, from its arrival to its answer."""
        self._answering += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._answering -= 1
            self._last_answer = self._clock()
            if self._answering == 0:
                self._quiet.set()

    @property
    def busy(self) -> bool:
        return self._answering > 0 or self._clock() - self._last_answer < self._calm_after

    @contextlib.asynccontextmanager
    async def step(self) -> AsyncIterator[None]:
        """Around one step of background work."""
        if not self.busy:
            yield
            return
        async with self._one_step:
            if self._answering:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._max_wait):
                        await self._quiet.wait()
            yield
