"""RunItem construction and validation against the official SDK model."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from oz_agent_sdk.types.agent import RunItem
from pydantic import ValidationError

from .artifacts import make_artifact
from .clock import format_ts, parse_ts
from .errors import SimError

__all__ = [
    "CONTROL_KEYS",
    "ENDED_STATES",
    "FINISHED_STATES",
    "append_artifacts",
    "apply_patch",
    "cancel_refusal",
    "iso_duration",
    "jsonable",
    "new_run",
    "validate_run",
]

FINISHED_STATES = frozenset({"SUCCEEDED", "FAILED", "ERROR", "CANCELLED"})
# "Ended" for cancel and handoff purposes: BLOCKED's execution has stopped too.
ENDED_STATES = FINISHED_STATES | {"BLOCKED"}

# Keys accepted by create/update that steer the simulator instead of being
# RunItem fields; they never appear in API responses.
CONTROL_KEYS = frozenset(
    {
        "add_artifact",
        "attachments",
        "add_attachment",
        "visible_at",
        "visible_after",
        "hidden",
        "followup_reject",
        "followup_transitions",
    }
)

# Run types the API refuses to cancel default to not cancellable, matching the
# RunItem docs ("false for GitHub Action and local runs").
_NOT_CANCELLABLE_SOURCES = frozenset({"GITHUB_ACTION", "LOCAL"})

_titles = itertools.count(1)

DEFAULT_CREATOR: dict[str, Any] = {
    "uid": "sim-user-1",
    "display_name": "Sim User",
    "email": "sim.user@example.com",
    "type": "user",
}


def jsonable(value: Any) -> Any:
    """Deep-convert datetimes to RFC3339 strings so state is plain JSON."""
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _normalise_ts(value: Any) -> str:
    # Re-serialise so every stored timestamp has one canonical UTC form.
    return format_ts(parse_ts(str(value)))


def new_run(fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Fill RunItem defaults around caller-supplied fields."""
    run: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    run_id = str(run.get("run_id") or uuid.uuid4())
    prompt = str(run.get("prompt") or "Complete the simulated task")
    created = _normalise_ts(run.get("created_at") or run.get("updated_at") or format_ts(now))
    local = run.get("execution_location") == "LOCAL" or run.get("source") in _NOT_CANCELLABLE_SOURCES
    defaults: dict[str, Any] = {
        "run_id": run_id,
        "task_id": run_id,
        "title": prompt[:60] if "prompt" in run else f"Simulated run {next(_titles)}",
        "prompt": prompt,
        "state": "QUEUED",
        "created_at": created,
        "updated_at": created,
        "source": "API",
        "creator": dict(DEFAULT_CREATOR),
        "session_link": f"https://app.warp.dev/session/{uuid.uuid4()}",
        "is_run_type_cancellable": not local,
        "artifacts": [],
    }
    merged = {**defaults, **run}
    merged["created_at"] = created
    merged["updated_at"] = _normalise_ts(merged["updated_at"])
    if merged["state"] == "INPROGRESS" and "started_at" not in merged:
        merged["started_at"] = created
    if "started_at" in merged:
        merged["started_at"] = _normalise_ts(merged["started_at"])
    return merged


def validate_run(run: Mapping[str, Any]) -> None:
    """Reject anything the official SDK model would not accept.

    Unknown top-level keys are refused too: the SDK model tolerates extras,
    so a typo like ``status`` for ``state`` would otherwise pass silently.
    """
    unknown = set(run) - set(RunItem.model_fields)
    if unknown:
        raise ValueError(f"unknown RunItem field(s): {', '.join(sorted(unknown))}")
    try:
        RunItem.model_validate(dict(run))
    except ValidationError as err:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise ValueError(f"invalid RunItem: {detail}") from None
    for key in ("created_at", "updated_at"):
        parse_ts(str(run[key]))


def iso_duration(delta: timedelta) -> str:
    """ISO 8601 duration like ``PT2M30S``, as RunItem.run_time documents."""
    total = max(0, int(delta.total_seconds()))
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    out = "PT"
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if seconds or out == "PT":
        out += f"{seconds}S"
    return out


def apply_patch(truth: Mapping[str, Any], patch: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """A patched copy of ``truth``; ``None`` deletes a field, ``updated_at`` defaults to now."""
    out = dict(truth)
    for key, value in patch.items():
        if key in ("run_id", "task_id") and value != truth.get(key):
            raise ValueError(f"{key} is immutable")
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    state = out["state"]
    if state != truth["state"]:
        # Keep the derived timing fields as consistent as the real API's.
        if state == "INPROGRESS" and "started_at" not in out:
            out["started_at"] = format_ts(now)
        if state in FINISHED_STATES and "started_at" in out:
            out["run_time"] = iso_duration(now - parse_ts(out["started_at"]))
    out["updated_at"] = _normalise_ts(patch["updated_at"]) if patch.get("updated_at") else format_ts(now)
    return out


def append_artifacts(truth: dict[str, Any], additions: Any, now: datetime) -> None:
    """Append full ArtifactItems, or ``{"artifact_type", "data"?}`` shorthands."""
    arts = list(truth.get("artifacts") or [])
    for item in additions if isinstance(additions, list) else [additions]:
        if "data" in item and "created_at" in item:
            arts.append(jsonable(item))
        else:
            arts.append(make_artifact(item["artifact_type"], item.get("data"), created_at=now))
    truth["artifacts"] = arts


def cancel_refusal(truth: Mapping[str, Any]) -> SimError | None:
    """Why the API would refuse to cancel this run, per the SDK's cancel docstring."""
    worker = (truth.get("agent_config") or {}).get("worker_host")
    # The docstring refuses self-hosted runs even though RunItem calls them cancellable.
    if truth.get("is_run_type_cancellable") is False or worker not in (None, "", "warp"):
        return SimError(422, "this run type (GitHub Action, local, or self-hosted) cannot be cancelled")
    state = truth["state"]
    if state in ENDED_STATES:
        return SimError(400, f"run is in state {state} and cannot be cancelled")
    if state == "PENDING":
        return SimError(409, "run is being prepared; retry the cancellation in a moment")
    return None
