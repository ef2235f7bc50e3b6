"""Plans posted in a run's thread, and their one approval.

An ``Approve plan`` click names a message; this is how the bridge knows which
run (and which plan) it belongs to, never from the click. A plan is approved
once: the first click claims it, and only a retry of that same click (after a
crash, or a transient failure) goes on to send the follow-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.tables import slack_plan_messages

_m = slack_plan_messages.c


@dataclass(frozen=True)
class PlanMessage:
    channel_id: str
    ts: str
    run_id: str
    place: str
    artifact_uid: str
    posted_at: datetime
    approval_click: str | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None


async def record_plan(conn: AsyncConnection, plan: PlanMessage) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    values = {f: getattr(plan, f) for f in ("channel_id", "ts", "run_id", "place", "artifact_uid", "posted_at")}
    await conn.execute(dialect.insert(slack_plan_messages).values(**values).on_conflict_do_nothing())


async def plan_by_message(conn: AsyncConnection, channel_id: str, ts: str) -> PlanMessage | None:
    """The plan message ``ts`` in ``channel_id`` (an ``Approve plan`` click names it), if the bridge posted it."""
    row = (await conn.execute(select(slack_plan_messages).where(_m.channel_id == channel_id, _m.ts == ts))).first()
    return PlanMessage(**dict(row._mapping)) if row else None


async def claim_approval(conn: AsyncConnection, plan: PlanMessage, *, click: str, user: str, now: datetime) -> bool:
    """Record that ``click`` approves ``plan``; ``False`` when another click approved it first."""
    unclaimed = or_(_m.approval_click.is_(None), _m.approval_click == click)
    statement = (
        update(slack_plan_messages)
        .where(_m.channel_id == plan.channel_id, _m.ts == plan.ts, unclaimed)
        .values(approval_click=click, approved_by=user, approved_at=now)
    )
    return (await conn.execute(statement)).rowcount == 1


async def release_approval(conn: AsyncConnection, plan: PlanMessage, *, click: str) -> None:
    """``click`` did not get its approval through (the API refused it): the plan may be approved again."""
    statement = (
        update(slack_plan_messages)
        .where(_m.channel_id == plan.channel_id, _m.ts == plan.ts, _m.approval_click == click)
        .values(approval_click=None, approved_by=None, approved_at=None)
    )
    await conn.execute(statement)
