"""Group work of concurrent callers: while one batch runs, the next one gathers.

Each caller awaits its own result; at most one batch is in flight, so under
load a batch holds everything that arrived while the previous one ran (a
group commit), and a lone caller is served at once, without waiting for company.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar, cast

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")
R = TypeVar("R")
Write = Callable[[AsyncConnection], Awaitable[R]]


class Batcher(Generic[T, R]):
    def __init__(self, handle: Callable[[list[T]], Awaitable[Sequence[R]]], max_size: int = 256) -> None:
        self._handle = handle
        self._max_size = max_size
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """``item``'s result, from the batch it joined; raises what that batch raised."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain(), name="batcher")
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max_size], self._pending[self._max_size :]
            try:
                results = await self._handle([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"a batch of {len(batch)} items came back with {len(results)} results")
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # a caller that gave up (client gone) no longer waits
                    future.set_result(result)


class _Failed:
    def __init__(self, error: Exception) -> None:
        self.error = error


class GroupCommit:
    """Database writes of many tasks in shared transactions, one transaction at a time.

    On SQLite every write queues for the one connection, so a write that joins the
    next transaction waits less than one that waits for its own; on PostgreSQL it
    saves a commit per write. A write the database refuses is retried alone, so it
    fails only its own caller.
    """

    def __init__(self, engine: AsyncEngine, max_size: int = 256) -> None:
        self._engine = engine
        self._batcher: Batcher[Write[Any], Any] = Batcher(self._commit, max_size=max_size)

    async def run(self, write: Write[R]) -> R:
        result = await self._batcher.submit(write)
        if isinstance(result, _Failed):
            raise result.error
        return cast(R, result)

    async def _commit(self, writes: list[Write[Any]]) -> list[Any]:
        try:
            async with self._engine.begin() as conn:
                return [await write(conn) for write in writes]
        except DBAPIError as exc:
            if len(writes) == 1 or exc.connection_invalidated:
                raise
        return [await self._alone(write) for write in writes]

    async def _alone(self, write: Write[Any]) -> Any:
        try:
            async with self._engine.begin() as conn:
                return await write(conn)
        except DBAPIError as exc:
            return _Failed(exc)
