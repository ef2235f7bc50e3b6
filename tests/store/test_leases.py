"""The poller lease: one holder at a time, renewable, taken over once expired or released."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.leadership import Leadership
from bridge.store import leases

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TTL = timedelta(seconds=30)


async def test_one_holder_at_a_time_until_the_lease_expires_or_is_released(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        assert await leases.hold(conn, "poller", "a", T0, TTL)
        assert not await leases.hold(conn, "poller", "b", T0 + timedelta(seconds=10), TTL)
        assert await leases.hold(conn, "poller", "a", T0 + timedelta(seconds=20), TTL)  # renewed to T0+50
        assert not await leases.hold(conn, "poller", "b", T0 + timedelta(seconds=45), TTL)
        assert await leases.hold(conn, "poller", "b", T0 + timedelta(seconds=51), TTL)  # a stopped renewing
        await leases.release(conn, "poller", "b")
        assert await leases.hold(conn, "poller", "a", T0 + timedelta(seconds=52), TTL)


async def test_a_follower_knows_when_the_leaders_lease_runs_out(engine: AsyncEngine) -> None:
    now = [T0]
    leader = Leadership(engine, ttl=30, shared=True, clock=lambda: now[0])
    follower = Leadership(engine, ttl=30, shared=True, clock=lambda: now[0])
    assert await leader.claim()
    now[0] = T0 + timedelta(seconds=12)
    assert not await follower.claim()
    assert follower.lapses_in(now[0]) == 18  # when it may take over, not a whole interval later
    assert leader.lapses_in(now[0]) is None
    await leader.step_down()
    assert not leader.is_leader
    assert await follower.claim() and follower.lapses_in(now[0]) is None
