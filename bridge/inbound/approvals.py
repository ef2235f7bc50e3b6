"""The ``Approve plan`` button: one follow-up saying ``slack.plan_approval``, once per plan.

The plan is the one the bridge posted as the clicked message (stored), and so
is its run. The first click claims the approval in the database before the
follow-up is sent; a later click is told who approved it, and a retry of the
claiming click (a Slack retry, a crash, a transient failure) goes on to send.
"""

from __future__ import annotations

from datetime import UTC, datetime

from oz_agent_sdk import AsyncOzAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbound.calls import Refused, oz_call
from bridge.inbound.outcome import Outcome
from bridge.inbound.replies import refusal_text
from bridge.metrics import Metrics
from bridge.store import slack_plans
from bridge.store.slack_plans import PlanMessage


def already_text(plan: PlanMessage) -> str:
    who = f"<@{plan.approved_by}>" if plan.approved_by else "someone"
    return f"This plan was already approved by {who}; nothing more was sent."


class Approvals:
    def __init__(self, engine: AsyncEngine, oz: AsyncOzAPI, message: str, metrics: Metrics) -> None:
        self._engine = engine
        self._oz = oz
        self._message = message
        self._metrics = metrics

    async def approve(self, plan: PlanMessage, click_id: str, user: str) -> Outcome:
        async with self._engine.begin() as conn:
            claimed = await slack_plans.claim_approval(conn, plan, click=click_id, user=user, now=datetime.now(UTC))
            current = await slack_plans.plan_by_message(conn, plan.channel_id, plan.ts)
        if not claimed:
            return Outcome("refused", already_text(current or plan), plan.run_id)
        try:
            await oz_call(self._oz.agent.runs.submit_followup(plan.run_id, message=self._message), effect=True)
        except Refused as exc:
            async with self._engine.begin() as conn:
                await slack_plans.release_approval(conn, plan, click=click_id)
            self._metrics.followups.labels("refused").inc()
            return Outcome("refused", refusal_text(exc).replace("Your reply", "The approval"), plan.run_id)
        self._metrics.followups.labels("accepted").inc()
        return Outcome("approved", f"Sent to the agent: “{self._message}”", plan.run_id)
