"""The ``Retry`` button: a new run like the failed one, told in the same thread.

The run retried is the one whose status message was clicked, as stored, and it
must still be retryable as the bridge last saw it (FAILED or ERROR, and the API
did not say a new run would fail the same way). The new run carries the same
prompt, agent config and metadata plus ``retry_of``; ``run_requests.start``
finds it by that metadata before creating one, so a second click, a Slack
retry of the click or a crash after the create call never starts another.
"""

from __future__ import annotations

from datetime import UTC, datetime

from oz_agent_sdk import AsyncOzAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge import run_requests
from bridge.inbound.calls import Refused, Transient, oz_call
from bridge.inbound.outcome import Outcome
from bridge.metrics import Metrics
from bridge.notifiers.slack_messages import is_retryable
from bridge.store import runs as run_store
from bridge.store import slack_started
from bridge.store.slack_placements import SlackPlacement

NOT_RETRYABLE = "This run can't be retried: it did not fail, or the Oz API said a new run would fail the same way."
UNKNOWN = "The bridge has no record of this run's prompt and config any more, so it can't retry it."


def started_text(run_id: str, existed: bool) -> str:
    if existed:
        return f"This run was already retried as `{run_id}`; it is told in this thread."
    return f"Retrying: a new run `{run_id}` was started, told in this thread."


class Retries:
    def __init__(self, engine: AsyncEngine, oz: AsyncOzAPI, metrics: Metrics) -> None:
        self._engine = engine
        self._oz = oz
        self._metrics = metrics

    async def retry(self, placement: SlackPlacement) -> Outcome:
        return self._counted(await self._retry(placement))

    async def _retry(self, placement: SlackPlacement) -> Outcome:
        assert placement.channel_id is not None and placement.thread_ts is not None  # a posted status message
        async with self._engine.connect() as conn:
            run = await run_store.load_run(conn, placement.run_id)
        if run is None:
            return Outcome("refused", UNKNOWN, placement.run_id)
        if not is_retryable(run):
            return Outcome("refused", NOT_RETRYABLE, placement.run_id)
        request = run_requests.retry_request(run, thread=(placement.channel_id, placement.thread_ts))
        try:
            started = await oz_call(run_requests.start(self._oz, request))
        except Refused as exc:
            return Outcome("refused", run_requests.refusal_text(exc.status, exc.body), placement.run_id)
        if started is None:
            raise Transient("Oz API answered the new run with an unreadable body")
        thread = (request.metadata["slack_channel"], request.metadata["slack_thread_ts"])
        async with self._engine.begin() as conn:
            await slack_started.record_run(conn, thread, started.run_id, datetime.now(UTC))
        result = "existing" if started.already_existed else "started"
        return Outcome(result, started_text(started.run_id, started.already_existed), started.run_id)

    def _counted(self, outcome: Outcome) -> Outcome:
        self._metrics.slack_run_starts.labels("retry", outcome.result).inc()
        return outcome
