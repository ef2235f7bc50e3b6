"""Threads people started runs from, known before the run exists.

A mention that asks for a run is stored with a row here, in the same
transaction as its inbox row, so from the moment Slack hears "ok" every
replica takes replies in that thread as replies in a bridge thread, although
the run, its placement and its status message do not exist yet. ``run_id`` is
the newest run the bridge started there (the mention's, then a retry's): a
reply goes to it until the run's own placement says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.tables import slack_started_threads

_s = slack_started_threads.c
ThreadKey = tuple[str, str]  # (channel id, thread ts)


@dataclass(frozen=True)
class StartedThread:
    channel_id: str
    thread_ts: str
    requested_at: datetime
    run_id: str | None  # None until the run is started (or when it was refused)
    started_at: datetime | None


async def record_requests(conn: AsyncConnection, threads: Sequence[ThreadKey], now: datetime) -> None:
    """Threads where a run was just asked for; one already known stays as it is."""
    if not threads:
        return
    rows = [{"channel_id": channel, "thread_ts": ts, "requested_at": now} for channel, ts in dict.fromkeys(threads)]
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    await conn.execute(insert(slack_started_threads).values(rows).on_conflict_do_nothing())


async def record_run(conn: AsyncConnection, thread: ThreadKey, run_id: str, now: datetime) -> None:
    """``run_id`` was started in ``thread`` (a mention's run, or a retry told there): it is the newest."""
    channel, ts = thread
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(slack_started_threads).values(
        channel_id=channel, thread_ts=ts, requested_at=now, run_id=run_id, started_at=now
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["channel_id", "thread_ts"], set_={"run_id": run_id, "started_at": now}
        )
    )


async def load(conn: AsyncConnection, thread: ThreadKey) -> StartedThread | None:
    channel, ts = thread
    row = (
        await conn.execute(select(slack_started_threads).where(_s.channel_id == channel, _s.thread_ts == ts))
    ).first()
    return StartedThread(**dict(row._mapping)) if row else None


async def known(conn: AsyncConnection, threads: Sequence[ThreadKey]) -> set[ThreadKey]:
    """Those of ``threads`` a run was asked for in."""
    if not threads:
        return set()
    wanted = or_(*(and_(_s.channel_id == channel, _s.thread_ts == ts) for channel, ts in threads))
    rows = await conn.execute(select(_s.channel_id, _s.thread_ts).where(wanted))
    return {(str(row.channel_id), str(row.thread_ts)) for row in rows}
