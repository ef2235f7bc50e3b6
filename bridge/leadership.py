"""Which replica polls: one leader per database, by lease, when replicas share PostgreSQL.

Only the poller needs a leader; every replica delivers and serves inbound
Slack. A second poller for a moment (a lease that lapsed during a slow tick)
is harmless: event ids are stable and the outbox keeps one row per id and
target. On SQLite there is one replica by construction, and a lease would only
make a restarted process wait for its own dead predecessor's to expire.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.logs import get_logger
from bridge.store import leases

log = get_logger("bridge.leadership")
POLLER_LEASE = "poller"
LEASE_INTERVALS = 3  # the poller lease lasts this many poll intervals, renewed at every tick


class Leadership:
    def __init__(
        self,
        engine: AsyncEngine,
        ttl: float,
        shared: bool,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._ttl = timedelta(seconds=ttl)
        self._shared = shared
        self._clock = clock
        self.holder = f"replica-{uuid.uuid4().hex[:12]}"
        self.is_leader = not shared
        self._others_until: datetime | None = None  # when the leader's lease runs out, as last read

    def lapses_in(self, now: datetime) -> float | None:
        """On a follower: seconds until the leader's lease (as read at the last claim) runs out."""
        if self.is_leader or self._others_until is None:
            return None
        return (self._others_until - now).total_seconds()

    async def claim(self) -> bool:
        """Renew or take the poller lease; returns whether this replica should poll now."""
        if not self._shared:
            return True
        async with self._engine.begin() as conn:
            leading = await leases.hold(conn, POLLER_LEASE, self.holder, self._clock(), self._ttl)
            self._others_until = None if leading else await conn.run_sync(leases.expiry_in, POLLER_LEASE)
        if leading != self.is_leader:
            log.info("took the poller lease" if leading else "another replica polls", holder=self.holder)
        self.is_leader = leading
        return leading

    async def step_down(self) -> None:
        if self._shared and self.is_leader:
            async with self._engine.begin() as conn:
                await leases.release(conn, POLLER_LEASE, self.holder)
            self.is_leader = False
