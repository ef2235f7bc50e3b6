"""Shutdown helpers shared by the workers that own background tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Collection


async def finish_within(tasks: Collection[asyncio.Task[None]], grace: float) -> int:
    """Let ``tasks`` finish for up to ``grace`` seconds, cancel the rest; returns how many were cut short.

    Work cut short is never lost: its claim is released or expires and another
    attempt picks it up, so shutdown can stay bounded.
    """
    if not tasks:
        return 0
    _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return len(pending)
