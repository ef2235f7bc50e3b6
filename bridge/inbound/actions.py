"""Buttons on a run's root message: ``Cancel run`` and ``Get files``.

The run acted on is the one whose stored root is the clicked message, never the
run the button's value names: a click on any other message is refused and
logged, and so is a value that disagrees with the root. The clicker alone hears
the outcome (``response_url``, else ``chat.postEphemeral``); after a cancel the
root message is redrawn from the run as the API now reports it.
"""

from __future__ import annotations

from oz_agent_sdk import AsyncOzAPI
from oz_agent_sdk.types.agent import RunItem, RunListHandoffAttachmentsResponse
from oz_agent_sdk.types.agent.run_list_handoff_attachments_response import Attachment
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbound.access import REFUSAL, AccessPolicy
from bridge.inbound.calls import Refused, Transient, oz_call
from bridge.inbound.feedback import SlackFeedback
from bridge.inbound.outcome import Outcome
from bridge.inbound.request import ButtonClick
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.notifiers.slack_messages import CANCEL_ACTION_ID, root_message
from bridge.store import slack_threads
from bridge.store.inbox import InboxRow, NewInboxEntry
from bridge.store.slack_threads import SlackThread

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


NOT_A_ROOT = "This button isn't on the message of a run the bridge knows, so nothing was done."
OTHER_RUN = "This button names another run than the message it is on, so nothing was done."


def inbox_entry(click: ButtonClick) -> NewInboxEntry:
    """What to store for a click on one of the bridge's buttons (the prefilter kept it)."""
    return NewInboxEntry(event_id=f"action:{click.click_id}", kind="block_actions", payload=click.to_json())


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


class ButtonHandler:
    def __init__(
        self, engine: AsyncEngine, oz: AsyncOzAPI, feedback: SlackFeedback, access: AccessPolicy, metrics: Metrics
    ) -> None:
        self._engine = engine
        self._oz = oz
        self._feedback = feedback
        self._access = access
        self._metrics = metrics

    async def act(self, row: InboxRow) -> Outcome:
        click = stored_click(row)
        if not self._access.allows(click.user, click.channel):
            return self._counted(click, Outcome("denied", REFUSAL))
        thread = await self._root_under(click)
        if thread is None:
            return self._counted(click, Outcome("refused", NOT_A_ROOT))
        if click.value is not None and click.value != thread.run_id:
            log.warning(
                "button click refused: its value names another run than the root it is on",
                user=click.user, channel=click.channel, message_ts=click.message_ts,
                run_id=thread.run_id, claimed_run_id=click.value[:128],
            )  # fmt: skip
            return self._counted(click, Outcome("refused", OTHER_RUN))
        if click.action_id == CANCEL_ACTION_ID:
            return self._counted(click, await self._cancel(thread.run_id))
        listing = await oz_call(self._oz.agent.runs.list_handoff_attachments(thread.run_id))
        return Outcome("files", files_text(_attachments(listing)), thread.run_id)

    async def _stored_root(self, click: ButtonClick) -> SlackThread | None:
        """The run whose stored root is the clicked message; the client's word counts for nothing."""
        if not (click.channel and click.message_ts):
            return None
        async with self._engine.connect() as conn:
            return await slack_threads.find_by_root(conn, click.channel, click.message_ts)

    async def _root_under(self, click: ButtonClick) -> SlackThread | None:
        thread = await self._stored_root(click)
        if thread is None:
            log.warning(
                "button click refused: the message is no run's root",
                user=click.user, channel=click.channel, message_ts=click.message_ts,
                claimed_run_id=(click.value or "")[:128] or None,
            )  # fmt: skip
        return thread

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
        if click.action_id == CANCEL_ACTION_ID and outcome.run_id and outcome.result != "gave_up":
            await self._redraw_root(outcome.run_id, click)
        if click.user is not None:
            await self._feedback.to_clicker(click.response_url, click.channel, click.user, outcome.text)

    async def _redraw_root(self, run_id: str, click: ButtonClick) -> None:
        """Best effort: the next poll redraws the root anyway, so a failure here is only logged."""
        thread = await self._stored_root(click)
        if thread is None or thread.run_id != run_id:
            return
        channel, ts = thread.channel_id, thread.ts
        try:
            run = await oz_call(self._oz.agent.runs.retrieve(run_id))
            if not isinstance(run, RunItem) or not run.run_id or not run.state:
                raise Transient("Oz API answered the run with an unreadable body")
            text, blocks = root_message(run.to_dict(mode="json"))
            await self._feedback.update_message(channel, ts, text, blocks)
        except (Transient, Refused) as exc:
            log.warning("root message not redrawn after the cancel", run_id=run_id, reason=str(exc))

    def give_up(self, row: InboxRow, reason: str) -> Outcome:
        if stored_click(row).action_id == CANCEL_ACTION_ID:
            self._metrics.cancels.labels("gave_up").inc()
            return Outcome("gave_up", "The run was not cancelled: the Oz API could not be reached. Please try again.")
        return Outcome("gave_up", "The files could not be fetched: the Oz API could not be reached. Please try again.")
