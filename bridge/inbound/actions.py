"""Buttons on a run's root message: ``Cancel run`` and ``Get files``.

The clicker alone hears the outcome (``response_url``, else ``chat.postEphemeral``);
after a cancel the root message is redrawn from the run as the API now reports it.
"""

from __future__ import annotations

from typing import Any

from oz_agent_sdk import AsyncOzAPI
from oz_agent_sdk.types.agent import RunItem, RunListHandoffAttachmentsResponse
from oz_agent_sdk.types.agent.run_list_handoff_attachments_response import Attachment
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbound.access import REFUSAL, AccessPolicy
from bridge.inbound.calls import Refused, Transient, oz_call
from bridge.inbound.feedback import SlackFeedback
from bridge.inbound.outcome import Outcome
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.notifiers.slack_messages import CANCEL_ACTION_ID, GET_FILES_ACTION_ID, root_message
from bridge.store import slack_threads
from bridge.store.inbox import InboxRow, NewInboxEntry

log = get_logger("bridge.inbound.actions")
BUTTONS = frozenset({CANCEL_ACTION_ID, GET_FILES_ACTION_ID})
CANCELLED_TEXT = "Done: the run was cancelled."
_CANCEL_REFUSALS = {
    400: "This run has already ended (or is waiting for input), so there is nothing to cancel.",
    404: "The Oz API doesn't know this run any more, so it can't be cancelled.",
    409: "This run is still being set up and can't be cancelled yet; please try again in a few seconds.",
    422: "This kind of run (self-hosted, local or GitHub Action) can't be cancelled from Slack.",
    401: "The bridge is not allowed to cancel runs: the Oz API rejected its credentials.",
    403: "The bridge is not allowed to cancel this run.",
}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _nested(payload: dict[str, Any], outer: str, inner: str) -> str | None:
    value = payload.get(outer)
    return _text(value.get(inner)) if isinstance(value, dict) else None


def inbox_entry(payload: dict[str, Any]) -> NewInboxEntry | None:
    """What to store for a block_actions payload; None when it is no button of ours."""
    action = next((a for a in payload.get("actions") or [] if a.get("action_id") in BUTTONS), None)
    user = _nested(payload, "user", "id")
    if action is None or user is None:
        return None
    # Slack does not retry interactions over HTTP, but Socket Mode redelivers unacked envelopes.
    click = _text(payload.get("trigger_id")) or f"{user}:{_text(action.get('action_ts'))}"
    stored = {
        "action_id": action["action_id"],
        "value": _text(action.get("value")),
        "user": user,
        "channel": _nested(payload, "container", "channel_id") or _nested(payload, "channel", "id"),
        "message_ts": _nested(payload, "container", "message_ts") or _nested(payload, "message", "ts"),
        "response_url": _text(payload.get("response_url")),
    }
    return NewInboxEntry(event_id=f"action:{click}", kind="block_actions", payload=stored)


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
        click = row.payload
        if not self._access.allows(click.get("user"), click.get("channel")):
            return self._counted(click, Outcome("denied", REFUSAL))
        run_id = await self._run_id(click)
        if run_id is None:
            return Outcome("refused", "This button isn't attached to a run the bridge knows.")
        if click["action_id"] == CANCEL_ACTION_ID:
            return self._counted(click, await self._cancel(run_id))
        listing = await oz_call(self._oz.agent.runs.list_handoff_attachments(run_id))
        return Outcome("files", files_text(_attachments(listing)), run_id)

    async def _run_id(self, click: dict[str, Any]) -> str | None:
        # The stored thread is the authority; the button's value is only a fallback.
        channel, ts = click.get("channel"), click.get("message_ts")
        if channel and ts:
            async with self._engine.connect() as conn:
                thread = await slack_threads.find_by_root(conn, channel, ts)
            if thread is not None:
                return thread.run_id
        return _text(click.get("value"))

    async def _cancel(self, run_id: str) -> Outcome:
        try:
            await oz_call(self._oz.agent.runs.cancel(run_id), effect=True)
        except Refused as exc:
            return Outcome("refused", cancel_refusal_text(exc), run_id)
        return Outcome("cancelled", CANCELLED_TEXT, run_id)

    def _counted(self, click: dict[str, Any], outcome: Outcome) -> Outcome:
        if click.get("action_id") == CANCEL_ACTION_ID:
            self._metrics.cancels.labels(outcome.result).inc()
        return outcome

    async def tell(self, row: InboxRow, outcome: Outcome) -> None:
        click = row.payload
        if click.get("action_id") == CANCEL_ACTION_ID and outcome.run_id and outcome.result != "gave_up":
            await self._redraw_root(outcome.run_id, click.get("channel"), click.get("message_ts"))
        await self._feedback.to_clicker(click.get("response_url"), click.get("channel"), click["user"], outcome.text)

    async def _redraw_root(self, run_id: str, channel: str | None, ts: str | None) -> None:
        """Best effort: the next poll redraws the root anyway, so a failure here is only logged."""
        if not channel or not ts:
            return
        try:
            run = await oz_call(self._oz.agent.runs.retrieve(run_id))
            if not isinstance(run, RunItem) or not run.run_id or not run.state:
                raise Transient("Oz API answered the run with an unreadable body")
            text, blocks = root_message(run.to_dict(mode="json"))
            await self._feedback.update_message(channel, ts, text, blocks)
        except (Transient, Refused) as exc:
            log.warning("root message not redrawn after the cancel", run_id=run_id, reason=str(exc))

    def give_up(self, row: InboxRow, reason: str) -> Outcome:
        if row.payload.get("action_id") == CANCEL_ACTION_ID:
            self._metrics.cancels.labels("gave_up").inc()
            return Outcome("gave_up", "The run was not cancelled: the Oz API could not be reached. Please try again.")
        return Outcome("gave_up", "The files could not be fetched: the Oz API could not be reached. Please try again.")
