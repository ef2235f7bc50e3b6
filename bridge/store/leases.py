"""Named leases: which replica holds a singleton job (the poller) until when, and replica heartbeats."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.tables import leases


async def hold(conn: AsyncConnection, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease; True when ``holder`` has it until ``now + ttl``."""
    renewed = await conn.execute(
        update(leases)
        .where(leases.c.name == name, or_(leases.c.holder == holder, leases.c.expires_at < now))
        .values(holder=holder, expires_at=now + ttl)
    )
    if renewed.rowcount:
        return True
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    taken = await conn.execute(
        dialect.insert(leases)
        .values(name=name, holder=holder, expires_at=now + ttl)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return bool(taken.rowcount)


async def release(conn: AsyncConnection, name: str, holder: str) -> None:
    """Give the lease up at once, so another replica need not wait for it to expire."""
    await conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))


async def count_live(conn: AsyncConnection, prefix: str, now: datetime) -> int:
    """How many unexpired leases have a name starting with ``prefix`` (replica heartbeats)."""
    query = select(func.count()).where(leases.c.name.startswith(prefix, autoescape=True), leases.c.expires_at > now)
    return int((await conn.execute(query)).scalar_one())
