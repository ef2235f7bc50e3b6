"""``POST /agent/runs``: creating a run, with the validation rules the SDK documents.

Follows ``oz_agent_sdk.types.agent_run_params.AgentRunParams`` field for field and
answers an ``AgentRunResponse``. Refusals use the API's problem format with the
SDK's ``ErrorCode`` values (402 ``insufficient_credits``, 403 ``not_authorized``,
422 ``operation_not_supported`` …), injectable with ``refuse_next_runs``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, get_args

from oz_agent_sdk.types import AmbientAgentConfig
from oz_agent_sdk.types.agent_run_params import AgentRunParams
from pydantic import ValidationError

from .errors import SimError

if TYPE_CHECKING:
    from .state import Simulator

__all__ = ["ATTACHMENT_TYPES", "CreateRecord", "RunCreation", "create_from_api", "fail_run", "spawn_child"]

ATTACHMENT_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
MAX_ATTACHMENTS = 5
MAX_METADATA_KEYS = 20
MAX_METADATA_VALUE_BYTES = 256
MAX_ORCHESTRATION_DEPTH = 5
RUN_MODES = ("normal", "plan", "orchestrate")
_METADATA_KEY = re.compile(r"^[a-zA-Z0-9._-]{1,64}$")
_BODY_KEYS = frozenset(AgentRunParams.__annotations__)
_CONFIG_KEYS = frozenset(f.alias or n for n, f in AmbientAgentConfig.model_fields.items())


@dataclass(frozen=True)
class CreateRecord:
    """An accepted ``POST /agent/runs``: the run it made and the body it got."""

    run_id: str
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Refusal:
    status: int
    error_code: str
    detail: str


@dataclass
class RunCreation:
    """What creation remembers and the knobs that steer it."""

    records: list[CreateRecord] = field(default_factory=list)
    refusals: deque[Refusal] = field(default_factory=deque)
    on_behalf_of_allowed: bool = True

    def clear(self) -> None:
        self.records.clear()
        self.refusals.clear()
        self.on_behalf_of_allowed = True


def bad(detail: str) -> SimError:
    return SimError(400, detail, error_code="invalid_request")


def _check_metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise bad("metadata must be an object of string keys to string values")
    if len(value) > MAX_METADATA_KEYS:
        raise bad(f"metadata has {len(value)} keys; at most {MAX_METADATA_KEYS} are allowed")
    for key, item in value.items():
        if not isinstance(key, str) or not _METADATA_KEY.match(key):
            raise bad(f"metadata key {key!r} must be 1-64 bytes of [a-zA-Z0-9._-]")
        if not isinstance(item, str):
            raise bad(f"metadata value of {key!r} must be a string")
        if len(item.encode("utf-8", "surrogatepass")) > MAX_METADATA_VALUE_BYTES:
            raise bad(f"metadata value of {key!r} is longer than {MAX_METADATA_VALUE_BYTES} bytes")
        if "\x00" in item:
            raise bad(f"metadata value of {key!r} contains a NUL character")
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:
            raise bad(f"metadata value of {key!r} is not valid UTF-8") from None
    return dict(value)


def _check_attachments(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise bad("attachments must be a list")
    if len(value) > MAX_ATTACHMENTS:
        raise bad(f"at most {MAX_ATTACHMENTS} attachments are allowed, got {len(value)}")
    decoded = []
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("data", "file_name")):
            raise bad(f"attachments[{index}] needs data (base64), file_name and mime_type")
        if item.get("mime_type") not in ATTACHMENT_TYPES:
            raise bad(f"attachments[{index}].mime_type must be one of {', '.join(sorted(ATTACHMENT_TYPES))}")
        try:
            size = len(base64.b64decode(item["data"], validate=True))
        except (binascii.Error, ValueError):
            raise bad(f"attachments[{index}].data is not base64") from None
        decoded.append({"file_name": item["file_name"], "mime_type": item["mime_type"], "size": size})
    return decoded


def _check_config(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad("config must be an object")
    unknown = sorted(set(value) - _CONFIG_KEYS)
    if unknown:
        raise bad(f"unknown config field(s): {', '.join(unknown)}")
    try:
        AmbientAgentConfig.model_validate(value)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise bad(f"invalid config: {problems}") from None
    return dict(value)


def _depth(sim: Simulator, run_id: str) -> int:
    depth, seen = 0, set()
    current: str | None = run_id
    while current and current not in seen:
        seen.add(current)
        depth += 1
        current = (sim.visible_run(current) or {}).get("parent_run_id")
    return depth


def _string(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise bad(f"{key} must be a string")
    return value


def _creator_for(on_behalf_of: str) -> dict[str, Any]:
    uid = "user-" + hashlib.sha1(on_behalf_of.lower().encode()).hexdigest()[:12]
    email = on_behalf_of if "@" in on_behalf_of else f"{on_behalf_of}@example.com"
    return {"uid": uid, "email": email, "display_name": email.split("@")[0], "type": "user"}


def run_fields(sim: Simulator, body: Any) -> dict[str, Any]:
    """The RunItem fields a valid body asks for; SimError for any rule it breaks."""
    if not isinstance(body, dict):
        raise bad("request body must be a JSON object")
    unknown = sorted(set(body) - _BODY_KEYS)
    if unknown:
        raise bad(f"unknown field(s): {', '.join(unknown)}")
    prompt, skill = _string(body, "prompt"), _string(body, "skill")
    config = _check_config(body["config"]) if body.get("config") is not None else None
    has_skill = bool(skill or (config or {}).get("skill_spec") or (config or {}).get("skills"))
    if not (prompt and prompt.strip()) and not has_skill and not body.get("conversation_id"):
        raise bad("prompt is required unless a skill is given (skill, config.skill_spec or config.skills)")
    mode = body.get("mode", "normal")
    if mode not in RUN_MODES:
        raise bad(f"invalid mode {mode!r}; expected one of {', '.join(RUN_MODES)}")
    fields: dict[str, Any] = {"prompt": prompt or f"Run the skill {skill or ''}".strip(), "source": "API"}
    if _string(body, "title"):
        fields["title"] = body["title"]
    if config is not None:
        fields["agent_config"] = config
    if body.get("metadata") is not None:
        fields["metadata"] = _check_metadata(body["metadata"])
    if body.get("attachments") is not None:
        _check_attachments(body["attachments"])
    parent = _string(body, "parent_run_id")
    if parent:
        if sim.visible_run(parent) is None:
            raise bad(f"parent run {parent} does not exist or is not visible")
        if _depth(sim, parent) >= MAX_ORCHESTRATION_DEPTH:
            raise bad(f"the maximum orchestration depth ({MAX_ORCHESTRATION_DEPTH}) would be exceeded")
        fields["parent_run_id"] = parent
    on_behalf_of = _string(body, "on_behalf_of")
    if on_behalf_of:
        if not sim.run_creation.on_behalf_of_allowed:
            raise SimError(403, "on_behalf_of is not enabled for this agent", error_code="not_authorized")
        fields["creator"] = _creator_for(on_behalf_of)
    if _string(body, "conversation_id"):
        fields["conversation_id"] = body["conversation_id"]
    return fields


def create_from_api(sim: Simulator, body: Any) -> dict[str, Any]:
    """Handle ``POST /agent/runs``: the AgentRunResponse body, or SimError."""
    if sim.run_creation.refusals:
        refusal = sim.run_creation.refusals.popleft()
        raise SimError(refusal.status, refusal.detail, error_code=refusal.error_code)
    run = sim.create_run(**run_fields(sim, body))
    sim.run_creation.records.append(CreateRecord(run["run_id"], dict(body)))
    return {"run_id": run["run_id"], "state": run["state"], "task_id": run["task_id"], "at_capacity": False}


# ---- knobs for tests and the demo ---------------------------------------------------------------


def refuse_next_runs(sim: Simulator, status: int, error_code: str, detail: str, count: int = 1) -> None:
    """The next ``count`` creations are refused with this problem (402 insufficient_credits …)."""
    from oz_agent_sdk.types import ErrorCode

    if error_code not in get_args(ErrorCode):
        raise ValueError(f"unknown error code {error_code!r}")
    sim.run_creation.refusals.extend([Refusal(status, error_code, detail)] * count)


def spawn_child(sim: Simulator, parent_run_id: str, **fields: Any) -> dict[str, Any]:
    """A child run, as the orchestration layer creates them (its metadata inherited from the parent)."""
    sim.get_run(parent_run_id)
    return sim.create_run(parent_run_id=parent_run_id, source="ORCHESTRATION", **fields)


def fail_run(
    sim: Simulator,
    run_id: str,
    *,
    retryable: bool | None = True,
    error_code: str = "internal_error",
    message: str = "The agent hit an unexpected error",
    state: str | None = None,
) -> dict[str, Any]:
    """End a run in FAILED (user errors) or ERROR (Warp errors), with ``status_message.retryable``."""
    warp_errors = {"authentication_required", "resource_unavailable", "internal_error"}
    status: dict[str, Any] = {"message": message, "error_code": error_code}
    if retryable is not None:
        status["retryable"] = retryable
    final = state or ("ERROR" if error_code in warp_errors else "FAILED")
    return sim.update_run(run_id, state=final, status_message=status)


def charge(sim: Simulator, run_id: str, *, inference_usd: float = 0.0, compute_usd: float = 0.0) -> dict[str, Any]:
    """Set the run's ``request_usage`` (credits and their USD cost) as the API reports it."""
    usage = {
        "inference_cost": round(inference_usd * 100, 4),
        "inference_cost_usd": inference_usd,
        "compute_cost": round(compute_usd * 100, 4),
        "compute_cost_usd": compute_usd,
    }
    return sim.update_run(run_id, request_usage=usage)
