"""The event model: what the diff engine emits and every notifier receives.

An event is plain data. Its ``id`` is derived from *what changed*, never from
when the bridge noticed it, so re-reading a run after a crash or a sweep
reproduces the same id and receivers can deduplicate on ``webhook-id``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JSONDict = dict[str, Any]

STATE_EVENT_TYPES: dict[str, str] = {
    "QUEUED": "run.queued",
    "PENDING": "run.pending",
    "CLAIMED": "run.claimed",
    "INPROGRESS": "run.started",
    "SUCCEEDED": "run.succeeded",
    "FAILED": "run.failed",
    "BLOCKED": "run.blocked",
    "ERROR": "run.errored",
    "CANCELLED": "run.cancelled",
}
UNKNOWN_STATE_EVENT = "run.state_changed"
RUN_CREATED = "run.created"

# Events from the clock (bridge.schedule): the run has not changed, time has passed.
RUN_STILL_BLOCKED = "run.still_blocked"
RUN_STUCK = "run.stuck"
RUN_COST_EXCEEDED = "run.cost_exceeded"
TIME_EVENT_TYPES = (RUN_STILL_BLOCKED, RUN_STUCK, RUN_COST_EXCEEDED)
DIGEST = "digest"

ARTIFACT_EVENT_TYPES: dict[str, str] = {
    "PLAN": "artifact.plan",
    "PULL_REQUEST": "artifact.pull_request",
    "SCREENSHOT": "artifact.screenshot",
    "FILE": "artifact.file",
    "EXTERNAL_REFERENCE": "artifact.external_reference",
}

TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "ERROR", "CANCELLED"})
CANCELLABLE_STATES = frozenset({"QUEUED", "PENDING", "CLAIMED", "INPROGRESS"})

KNOWN_EVENT_TYPES: tuple[str, ...] = (
    RUN_CREATED,
    *STATE_EVENT_TYPES.values(),
    UNKNOWN_STATE_EVENT,
    *TIME_EVENT_TYPES,
    *ARTIFACT_EVENT_TYPES.values(),
)


def state_event_type(state: str) -> str:
    return STATE_EVENT_TYPES.get(state, UNKNOWN_STATE_EVENT)


def artifact_event_type(artifact_type: str) -> str:
    return ARTIFACT_EVENT_TYPES.get(artifact_type, f"artifact.{artifact_type.lower()}")


def event_id(run_id: str, *parts: str) -> str:
    """A stable id for one change of one run: same inputs, same id, forever."""
    digest = hashlib.sha256("\x1f".join((run_id, *parts)).encode()).hexdigest()
    return f"evt_{digest[:32]}"


def cost_figures(run: JSONDict) -> list[float]:
    """The run's ``request_usage.*_cost_usd`` figures that are usable numbers (approximate US dollars)."""
    usage = run.get("request_usage")
    if not isinstance(usage, dict):
        return []
    return [
        float(value)
        for key, value in usage.items()
        if str(key).endswith("_cost_usd")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    ]


def run_cost_usd(run: JSONDict) -> float:
    """The run's total USD cost, as the contract defines it: the sum of ``request_usage.*_cost_usd``."""
    return float(sum(cost_figures(run)))


def rfc3339(moment: datetime) -> str:
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def digest_queue(name: str) -> str:
    """The ``run_id`` a digest travels under: one delivery queue per digest and target."""
    return f"digest:{name}"


@dataclass(frozen=True)
class Event:
    """One thing to tell, as it travels from diff (or the clock) to notifiers.

    ``run`` is the run exactly as the API returned it (JSON-ready); ``artifact``
    is the new artifact for ``artifact.*`` events and ``None`` otherwise. A
    digest tells no single run: its ``run`` is ``None``, ``digest`` holds the
    summary, and ``run_id`` is its queue (``digest:<name>``).
    """

    id: str
    type: str
    run_id: str
    created_at: str
    run: JSONDict | None
    previous_state: str | None = None
    artifact: JSONDict | None = field(default=None)
    digest: JSONDict | None = field(default=None)

    def to_payload(self) -> JSONDict:
        """The webhook body of the contract, field for field."""
        payload = {
            "id": self.id,
            "type": self.type,
            "created_at": self.created_at,
            "run": self.run,
            "previous_state": self.previous_state,
            "artifact": self.artifact,
        }
        if self.digest is not None:
            payload["digest"] = self.digest
        return payload

    @classmethod
    def from_payload(cls, payload: JSONDict) -> Event:
        run, digest = payload["run"], payload.get("digest")
        run_id = run["run_id"] if run is not None else digest_queue(str((digest or {}).get("name")))
        return cls(
            id=payload["id"],
            type=payload["type"],
            run_id=run_id,
            created_at=payload["created_at"],
            run=run,
            previous_state=payload.get("previous_state"),
            artifact=payload.get("artifact"),
            digest=digest,
        )

    @property
    def fields(self) -> JSONDict:
        """The run's fields, empty for a digest (which tells no single run)."""
        return self.run if self.run is not None else {}

    @property
    def state(self) -> str:
        return str(self.fields.get("state", ""))

    @property
    def is_artifact(self) -> bool:
        return self.type.startswith("artifact.")
