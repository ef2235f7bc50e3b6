"""One asyncio lock per key (a run and a place), so two deliveries never post one status message twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class _Holders:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    count: int = 0


class KeyedLocks:
    """One asyncio lock per key, forgotten when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Holders] = {}

    @asynccontextmanager
    async def hold(self, key: tuple[str, str]) -> AsyncIterator[None]:
        holders = self._entries.setdefault(key, _Holders())
        holders.count += 1
        try:
            async with holders.lock:
                yield
        finally:
            holders.count -= 1
            if holders.count == 0:
                del self._entries[key]
