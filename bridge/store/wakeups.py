"""Wake every replica's delivery worker when work is committed (PostgreSQL LISTEN/NOTIFY).

Only the leader polls, so without this only the leader's worker heard of new
rows at once and the others found them at their next periodic check. Writers
``pg_notify`` inside the transaction that queued the work (delivered at commit);
each replica keeps one connection listening and wakes its worker. A lost
connection is re-opened with backoff, and the worker is woken on every
(re)connect, since notifications sent meanwhile are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from bridge.logs import get_logger
from bridge.store.outbox import WAKE_CHANNEL

if TYPE_CHECKING:
    import asyncpg

log = get_logger("bridge.store.wakeups")


def asyncpg_dsn(database_url: str) -> str:
    """The DSN asyncpg takes, from a ``postgresql://`` or ``postgresql+asyncpg://`` URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class Wakeups:
    def __init__(self, database_url: str, on_wake: Callable[[], None], channel: str = WAKE_CHANNEL) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._on_wake = on_wake
        self._channel = channel
        self.connected = asyncio.Event()

    def _notified(self, *_args: Any) -> None:
        self._on_wake()

    async def run(self) -> None:
        # Imported here: a bridge on SQLite never needs asyncpg (13 MiB of its resident memory).
        import asyncpg

        failures = 0
        while True:
            try:
                connection = await asyncpg.connect(self._dsn, timeout=10)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                failures += 1
                delay = min(30.0, 0.5 * 2**failures)
                log.warning("cannot listen for outbox wake-ups; retrying", error=type(exc).__name__, retry_in=delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            try:
                await self._listen(connection)
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)

    async def _listen(self, connection: asyncpg.Connection) -> None:
        import asyncpg

        lost = asyncio.Event()
        connection.add_termination_listener(lambda _conn: lost.set())
        await connection.add_listener(self._channel, self._notified)
        self.connected.set()
        self._on_wake()  # whatever was announced while we were not listening
        while not lost.is_set() and not connection.is_closed():
            # A half-open connection never reports its end: ask now and then.
            try:
                await asyncio.wait_for(lost.wait(), timeout=15)
            except TimeoutError:
                try:
                    await connection.execute("SELECT 1", timeout=5)
                except (OSError, asyncpg.PostgresError, TimeoutError):
                    return
