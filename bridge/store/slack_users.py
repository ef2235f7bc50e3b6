"""Slack users found by email, so a run's creator is looked up once per TTL, by every replica.

"No such user" is remembered too: a creator without a Slack account costs one
``users.lookupByEmail`` per TTL, not one per event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.tables import slack_users

_u = slack_users.c


@dataclass(frozen=True)
class KnownUser:
    email: str
    user_id: str | None  # None: Slack has no user with this email
    checked_at: datetime


def normalise(email: str) -> str:
    return email.strip().lower()


async def lookup(conn: AsyncConnection, email: str) -> KnownUser | None:
    row = (await conn.execute(select(slack_users).where(_u.email == normalise(email)))).first()
    return KnownUser(row.email, row.user_id, row.checked_at) if row else None


async def remember(conn: AsyncConnection, email: str, user_id: str | None, now: datetime) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    values = {"email": normalise(email), "user_id": user_id, "checked_at": now}
    statement = dialect.insert(slack_users).values(**values)
    await conn.execute(
        statement.on_conflict_do_update(index_elements=["email"], set_={"user_id": user_id, "checked_at": now})
    )
