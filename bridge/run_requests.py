"""Starting and retrying Oz runs through the SDK, at most once per request.

A request names the run it would create by its metadata (for Slack: the
channel and ts of the message that asked, plus ``retry_of`` for a retry).
``start`` first looks for a run that already carries that metadata (the list
filter ``metadata[...]``), so a retried Slack event or a crash between the
create call and the bridge's own record never starts a second run.
SDK errors are left to the caller to classify; ``refusal_text`` puts a
refusal in words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from oz_agent_sdk import AsyncOzAPI, Omit, omit
from oz_agent_sdk.types import AmbientAgentConfigParam
from oz_agent_sdk.types.agent_run_params import Attachment

from bridge.events import JSONDict

Mode = Literal["normal", "plan", "orchestrate"]
MAX_FILTER_PAIRS = 5  # the API's limit on metadata filter pairs per list request
RETRY_OF = "retry_of"


@dataclass(frozen=True)
class RunRequest:
    prompt: str
    metadata: Mapping[str, str]
    identity: tuple[str, ...]  # the metadata keys that make this request unique (found again by them)
    mode: Mode = "normal"
    config: Mapping[str, Any] = field(default_factory=dict)
    attachments: Sequence[Attachment] = ()
    on_behalf_of: str | None = None

    def identity_filter(self) -> dict[str, str]:
        return {key: self.metadata[key] for key in self.identity}


@dataclass(frozen=True)
class StartedRun:
    run_id: str
    state: str
    already_existed: bool  # found by its metadata: nothing was created this time


async def find_existing(client: AsyncOzAPI, metadata: Mapping[str, str]) -> tuple[str, str] | None:
    """(run id, state) of the earliest run carrying all of ``metadata``, if any."""
    if not 0 < len(metadata) <= MAX_FILTER_PAIRS:
        raise ValueError(f"a metadata filter takes 1 to {MAX_FILTER_PAIRS} pairs")
    page = await client.agent.runs.list(metadata=dict(metadata), limit=1, sort_by="created_at", sort_order="asc")
    runs = getattr(page, "runs", None) or []
    return (runs[0].run_id, runs[0].state) if runs else None


async def start(client: AsyncOzAPI, request: RunRequest) -> StartedRun:
    """The run ``request`` asks for: the one already started for it, else a new one."""
    existing = await find_existing(client, request.identity_filter())
    if existing is not None:
        return StartedRun(*existing, already_existed=True)
    mode: Mode | Omit = omit if request.mode == "normal" else request.mode
    config: AmbientAgentConfigParam | Omit = dict(request.config) if request.config else omit  # type: ignore[assignment]
    created = await client.agent.run(
        prompt=request.prompt,
        metadata=dict(request.metadata),
        mode=mode,
        config=config,
        attachments=list(request.attachments) if request.attachments else omit,
        on_behalf_of=request.on_behalf_of or omit,
    )
    return StartedRun(created.run_id, created.state, already_existed=False)


def retry_request(run: JSONDict, thread: tuple[str, str] | None = None) -> RunRequest:
    """A new run like ``run`` (same prompt, agent config and metadata) plus ``retry_of``.

    ``run`` is a stored snapshot (RunItem JSON). Its agent config is sent back as
    the config; the metadata keeps every key, so a run started from Slack is told
    in the same thread. ``thread`` (channel id, thread ts: where the Retry button
    was clicked) is added as ``slack_channel``/``slack_thread_ts`` when the run has
    none, so the retry is told in that thread too.
    """
    run_id = str(run["run_id"])
    metadata = {str(k): str(v) for k, v in (run.get("metadata") or {}).items() if k != RETRY_OF}
    if thread is not None and not ("slack_channel" in metadata and "slack_thread_ts" in metadata):
        metadata["slack_channel"], metadata["slack_thread_ts"] = thread
    metadata[RETRY_OF] = run_id
    identity = (*(k for k in ("slack_channel", "slack_thread_ts") if k in metadata), RETRY_OF)
    config = run.get("agent_config") if isinstance(run.get("agent_config"), dict) else {}
    return RunRequest(
        prompt=str(run.get("prompt") or ""),
        metadata=metadata,
        identity=identity,
        config={k: v for k, v in (config or {}).items() if v is not None},
    )


_REFUSALS = {
    "insufficient_credits": "the team has no Oz credits left",
    "budget_exceeded": "the team's spending budget for Oz is used up",
    "feature_not_available": "this feature is not enabled on the team's Warp plan",
    "not_authorized": "the bridge's Oz API key is not allowed to start this run",
    "external_authentication_required": "a service the agent needs has not been authorized yet",
    "integration_disabled": "the integration this run needs is disabled",
    "integration_not_configured": "the integration this run needs is not set up",
    "content_policy_violation": "the request breaks Oz's content policy",
    "invalid_request": "the Oz API did not accept the request",
    "operation_not_supported": "the agent config (slack.start.config) is not one Oz can run",
    "resource_not_found": "something the agent config names does not exist",
}
_BY_STATUS = {
    400: "invalid_request",
    401: "not_authorized",
    402: "insufficient_credits",
    403: "not_authorized",
    404: "resource_not_found",
    422: "operation_not_supported",
}


def refusal_text(status: int, body: object) -> str:
    """Why the API refused to start a run, in words (its own ``detail`` quoted, escaped for mrkdwn)."""
    problem = body if isinstance(body, dict) else {}
    code = str(problem.get("type") or "").rsplit("/", 1)[-1]
    reason = _REFUSALS.get(code) or _REFUSALS.get(_BY_STATUS.get(status, ""), f"the Oz API answered {status}")
    detail = problem.get("detail")
    said = ""
    if isinstance(detail, str) and detail.strip():
        text = " ".join(detail.split())[:300].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        said = f" (the Oz API said: {text})"
    return f"The run was not started: {reason}{said}."
