"""Named leases: which replica holds a singleton job (the poller) until when, and replica heartbeats."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.tables import leases


def hold_in(conn: Connection, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease; True when ``holder`` has it until ``now + ttl``."""
    renewed = conn.execute(
        update(leases)
        .where(leases.c.name == name, or_(leases.c.holder == holder, leases.c.expires_at < now))
        .values(holder=holder, expires_at=now + ttl)
    )
    if renewed.rowcount:
        return True
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    taken = conn.execute(
        dialect.insert(leases)
        .values(name=name, holder=holder, expires_at=now + ttl)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return bool(taken.rowcount)


def release_in(conn: Connection, name: str, holder: str) -> None:
    conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))


def expiry_in(conn: Connection, name: str) -> datetime | None:
    """When the lease ``name`` runs out (its holder's clock), or None when nobody holds it."""
    expires: datetime | None = conn.execute(select(leases.c.expires_at).where(leases.c.name == name)).scalar()
    return expires


def count_live(conn: Connection, prefix: str, now: datetime) -> int:
    """How many unexpired leases have a name starting with ``prefix`` (replica heartbeats)."""
    query = select(func.count()).where(leases.c.name.startswith(prefix, autoescape=True), leases.c.expires_at > now)
    return int(conn.execute(query).scalar_one())


async def hold(conn: AsyncConnection, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease; True when ``holder`` has it until ``now + ttl``."""
    return await conn.run_sync(hold_in, name, holder, now, ttl)


async def release(conn: AsyncConnection, name: str, holder: str) -> None:
    """Give the lease up at once, so another replica need not wait for it to expire."""
    await conn.run_sync(release_in, name, holder)
