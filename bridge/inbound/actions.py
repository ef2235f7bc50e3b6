"""Buttons on a run's status message and on its plans.

``Cancel run``, ``Get files``, ``Retry``, ``Mute``/``Unmute`` act on the run
whose stored status message (or thread) is the clicked message; ``Approve
plan`` on the run of the stored plan message that was clicked. Never on the run
the button's value names: a click on any other message is refused and logged,
and so is a value that disagrees with the stored run. The clicker passes the
same access checks as a reply, and alone hears the outcome (``response_url``,
else ``chat.postEphemeral``). After a cancel or a mute change every status
message of the run is redrawn.
"""

from __future__ import annotations

from dataclasses import dataclass

from oz_agent_sdk import AsyncOzAPI
from oz_agent_sdk.types.agent import RunItem, RunListHandoffAttachmentsResponse
from oz_agent_sdk.types.agent.run_list_handoff_attachments_response import Attachment
from slack_sdk.errors import SlackApiError
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbound.access import REFUSAL, AccessPolicy
from bridge.inbound.approvals import Approvals
from bridge.inbound.calls import Refused, Transient, oz_call
from bridge.inbound.feedback import SlackFeedback
from bridge.inbound.mutes import Mute, Mutes, Redraw, Unmute
from bridge.inbound.outcome import Outcome
from bridge.inbound.request import ButtonClick
from bridge.inbound.retries import Retries
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.notifiers.slack_messages import (
    CANCEL_ACTION_ID,
    MUTE_ACTION_ID,
    RETRY_ACTION_ID,
    UNMUTE_ACTION_ID,
)
from bridge.notifiers.slack_plans import APPROVE_PLAN_ACTION_ID
from bridge.store import slack_placements, slack_plans
from bridge.store.inbox import InboxRow, NewInboxEntry
from bridge.store.slack_placements import SlackPlacement
from bridge.store.slack_plans import PlanMessage

log = get_logger("bridge.inbound.actions")
CANCELLED_TEXT = "Done: the run was cancelled."
_CANCEL_REFUSALS = {
    400: "This run has already ended (or is waiting for input), so there is nothing to cancel.",
    404: "The Oz API doesn't know this run any more, so it can't be cancelled.",
    409: "This run is still being set up and can't be cancelled yet; please try again in a few seconds.",
    422: "This kind of run (self-hosted, local or GitHub Action) can't be cancelled from Slack.",
    401: "The bridge is not allowed to cancel runs: the Oz API rejected its credentials.",
    403: "The bridge is not allowed to cancel this run.",
}
_GAVE_UP = {
    CANCEL_ACTION_ID: "The run was not cancelled: the Oz API could not be reached. Please try again.",
    RETRY_ACTION_ID: "The run was not retried: the Oz API could not be reached. Please try again.",
    APPROVE_PLAN_ACTION_ID: "The plan was not approved: the Oz API could not be reached. Please try again.",
}
_FILES_GAVE_UP = "The files could not be fetched: the Oz API could not be reached. Please try again."
_REDRAWN_AFTER = frozenset({"cancelled", "muted", "unmuted"})

NOT_A_ROOT = "This button isn't on the message of a run the bridge knows, so nothing was done."
OTHER_RUN = "This button names another run than the message it is on, so nothing was done."


def inbox_entry(click: ButtonClick) -> NewInboxEntry:
    """What to store for a click on one of the bridge's buttons (the prefilter kept it).

    Clicks on one message are acted on one at a time, in order: two people clicking Retry
    at once get one new run between them.
    """
    queue = f"click:{click.channel}:{click.message_ts}" if click.channel and click.message_ts else None
    return NewInboxEntry(
        event_id=f"action:{click.click_id}", kind="block_actions", payload=click.to_json(), queue_key=queue
    )


def stored_click(row: InboxRow) -> ButtonClick:
    """The click an inbox row holds (rows stored before typed requests lack ``click_id``)."""
    return ButtonClick.from_json({"click_id": row.event_id.removeprefix("action:"), **row.payload})


def cancel_refusal_text(exc: Refused) -> str:
    return _CANCEL_REFUSALS.get(exc.status, f"The Oz API refused to cancel this run (status {exc.status}).")


def _attachments(listing: object) -> list[Attachment]:
    # The SDK parses leniently: a proxy's 200 page comes back as a str or an empty model.
    attachments = getattr(listing, "attachments", None)
    if not isinstance(listing, RunListHandoffAttachmentsResponse) or not isinstance(attachments, list):
        raise Transient("Oz API answered the attachment listing with an unreadable body")
    return [a for a in attachments if isinstance(a, Attachment) and a.download_url and a.filename]


def files_text(attachments: list[Attachment]) -> str:
    if not attachments:
        return "This run has no files to download yet."
    lines = [f"• <{a.download_url}|{_escape(a.filename)}>" for a in attachments]
    return "Files from this run (the links expire soon):\n" + "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "¦")


@dataclass(frozen=True)
class Clicked:
    """What the clicked message is, by the bridge's records: a run's status message (or thread), or a plan."""

    run_id: str
    placement: SlackPlacement | None
    plan: PlanMessage | None = None

    @property
    def in_dm(self) -> bool:
        return self.placement is not None and self.placement.kind == "dm"


class ButtonHandler:
    def __init__(
        self,
        engine: AsyncEngine,
        oz: AsyncOzAPI,
        feedback: SlackFeedback,
        access: AccessPolicy,
        slack: Redraw,
        plan_approval: str,
        metrics: Metrics,
    ) -> None:
        self._engine = engine
        self._oz = oz
        self._feedback = feedback
        self._access = access
        self._slack = slack
        self._metrics = metrics
        self._mutes = Mutes(engine, slack)
        self._retries = Retries(engine, oz, metrics)
        self._approvals = Approvals(engine, oz, plan_approval, metrics)

    async def act(self, row: InboxRow) -> Outcome:
        click = stored_click(row)
        clicked = await self._clicked(click)
        if clicked is None:
            return self._counted(click, Outcome("refused", NOT_A_ROOT))
        if click.value is not None and click.value != clicked.run_id:
            log.warning(
                "button click refused: its value names another run than the message it is on",
                user=click.user, channel=click.channel, message_ts=click.message_ts,
                run_id=clicked.run_id, claimed_run_id=click.value[:128],
            )  # fmt: skip
            return self._counted(click, Outcome("refused", OTHER_RUN))
        if not self._access.allows(click.user, click.channel, in_dm=clicked.in_dm):
            return self._counted(click, Outcome("denied", REFUSAL))
        return self._counted(click, await self._do(click, clicked))

    async def _do(self, click: ButtonClick, clicked: Clicked) -> Outcome:
        action, placement = click.action_id, clicked.placement
        if action == APPROVE_PLAN_ACTION_ID:
            assert clicked.plan is not None and click.user is not None
            return await self._approvals.approve(clicked.plan, click.click_id, click.user)
        if action == CANCEL_ACTION_ID:
            return await self._cancel(clicked.run_id)
        assert placement is not None  # a status message's click resolves to its placement
        if action == RETRY_ACTION_ID:
            return await self._retries.retry(placement)
        if action in (MUTE_ACTION_ID, UNMUTE_ACTION_ID):
            return await self._mutes.apply(placement, Mute(None) if action == MUTE_ACTION_ID else Unmute())
        listing = await oz_call(self._oz.agent.runs.list_handoff_attachments(clicked.run_id))
        return Outcome("files", files_text(_attachments(listing)), clicked.run_id)

    async def _clicked(self, click: ButtonClick) -> Clicked | None:
        """The run behind the clicked message, from the bridge's records; the client's word counts for nothing."""
        if not (click.channel and click.message_ts):
            return None
        async with self._engine.connect() as conn:
            if click.action_id == APPROVE_PLAN_ACTION_ID:
                plan = await slack_plans.plan_by_message(conn, click.channel, click.message_ts)
                home = await slack_placements.load(conn, plan.run_id, plan.place) if plan else None
                found = Clicked(plan.run_id, home, plan) if plan else None
            else:
                placement = await slack_placements.by_status_message(conn, click.channel, click.message_ts)
                if placement is None:
                    placement = await slack_placements.thread_owner(conn, click.channel, click.message_ts)
                found = Clicked(placement.run_id, placement) if placement else None
        if found is None:
            log.warning(
                "button click refused: the message is no run's root (status message) or plan",
                user=click.user, channel=click.channel, message_ts=click.message_ts,
                claimed_run_id=(click.value or "")[:128] or None,
            )  # fmt: skip
        return found

    async def _cancel(self, run_id: str) -> Outcome:
        try:
            await oz_call(self._oz.agent.runs.cancel(run_id), effect=True)
        except Refused as exc:
            return Outcome("refused", cancel_refusal_text(exc), run_id)
        return Outcome("cancelled", CANCELLED_TEXT, run_id)

    def _counted(self, click: ButtonClick, outcome: Outcome) -> Outcome:
        if click.action_id == CANCEL_ACTION_ID:
            self._metrics.cancels.labels(outcome.result).inc()
        return outcome

    async def tell(self, row: InboxRow, outcome: Outcome) -> None:
        click = stored_click(row)
        if outcome.run_id and outcome.result in _REDRAWN_AFTER:
            if outcome.result == "cancelled":
                await self._redraw_from_api(outcome.run_id)
            else:
                await self._mutes.redraw(outcome.run_id)
        if outcome.result == "approved" and click.channel and click.message_ts:
            await self._feedback.react_soon(click.channel, click.message_ts, "white_check_mark")
        if click.user is not None:
            await self._feedback.to_clicker(click.response_url, click.channel, click.user, outcome.text)

    async def _redraw_from_api(self, run_id: str) -> None:
        """Best effort: the next poll redraws the status messages anyway, so a failure here is only logged."""
        try:
            run = await oz_call(self._oz.agent.runs.retrieve(run_id))
            if not isinstance(run, RunItem) or not run.run_id or not run.state:
                raise Transient("Oz API answered the run with an unreadable body")
            await self._slack.redraw(run.to_dict(mode="json"))
        except (Transient, Refused) as exc:
            log.warning("status messages not redrawn after the cancel", run_id=run_id, reason=str(exc))
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            log.warning("status messages not redrawn after the cancel", run_id=run_id, error=error)

    def give_up(self, row: InboxRow, reason: str) -> Outcome:
        action = stored_click(row).action_id
        if action == CANCEL_ACTION_ID:
            self._metrics.cancels.labels("gave_up").inc()
        if action == RETRY_ACTION_ID:
            self._metrics.slack_run_starts.labels("retry", "gave_up").inc()
        text = _GAVE_UP.get(
            action, "The files could not be fetched: the Oz API could not be reached. Please try again."
        )
        return Outcome("gave_up", text)
