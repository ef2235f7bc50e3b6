"""Pure diff: (what we stored last time, what the API says now) → events.

No I/O and no clock: the caller passes the moment of detection, so the same
inputs always give the same events, which is what makes re-reads harmless.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from bridge.events import (
    RUN_CREATED,
    Event,
    JSONDict,
    artifact_event_type,
    event_id,
    state_event_type,
)


@dataclass(frozen=True)
class RunSnapshot:
    """What the bridge remembers of a run between polls."""

    run_id: str
    state: str
    updated_at: datetime
    artifact_keys: frozenset[str]


def parse_time(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError(f"expected an RFC3339 timestamp, got {value!r}")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def artifact_key(artifact: JSONDict) -> str:
    """Identify an artifact by what it is, never by its position in the list."""
    data = artifact.get("data") or {}
    kind = str(artifact.get("artifact_type", ""))
    for name in ("artifact_uid", "document_uid", "url"):
        value = data.get(name) if isinstance(data, dict) else None
        if value:
            return f"{kind}:{name}:{value}"
    canonical = json.dumps(artifact, sort_keys=True, default=str)
    return f"{kind}:sha256:{hashlib.sha256(canonical.encode()).hexdigest()[:24]}"


def snapshot_of(run: JSONDict, stored: RunSnapshot | None = None) -> RunSnapshot:
    """What to remember of this observation: its state and time, and every artifact ever seen.

    Artifacts told once stay told: one the API drops from the list and lists
    again later is not announced a second time.
    """
    keys = frozenset(artifact_key(a) for a in run.get("artifacts") or [])
    return RunSnapshot(
        run_id=str(run["run_id"]),
        state=str(run["state"]),
        updated_at=parse_time(run["updated_at"]),
        artifact_keys=keys | stored.artifact_keys if stored is not None else keys,
    )


def is_news(stored: RunSnapshot | None, run: JSONDict, start_point: datetime) -> bool:
    """Whether this observation should be diffed and remembered.

    A first sighting counts only if the run changed after the start point (a
    sweep may reach behind it); a later sighting only if ``updated_at`` moved on.
    """
    updated_at = parse_time(run["updated_at"])
    if stored is None:
        return updated_at > start_point
    return updated_at > stored.updated_at


def diff_run(stored: RunSnapshot | None, run: JSONDict, start_point: datetime, detected_at: str) -> list[Event]:
    """Events for one observation of one run, in contract order.

    ``stored`` is ``None`` on a first sighting. An observation that is not newer
    than the snapshot (a sweep re-read, a tie) yields nothing. Every event
    shares the one ``run`` dict: a run with thousands of artifacts costs its
    size once, not once per event.
    """
    if not is_news(stored, run, start_point):
        return []
    run_id = str(run["run_id"])
    state = str(run["state"])
    updated_at = str(run["updated_at"])
    events: list[Event] = []

    def make(kind: str, ident: tuple[str, ...], **extra: object) -> Event:
        return Event(
            id=event_id(run_id, *ident),
            type=kind,
            run_id=run_id,
            created_at=detected_at,
            run=run,
            **extra,  # type: ignore[arg-type]
        )

    if stored is None and parse_time(run["created_at"]) > start_point:
        events.append(make(RUN_CREATED, ("created",)))
    if stored is None or stored.state != state:
        previous = stored.state if stored else None
        events.append(make(state_event_type(state), ("state", state, updated_at), previous_state=previous))
    seen = stored.artifact_keys if stored else frozenset()
    fresh = [(key, a) for a in run.get("artifacts") or [] if (key := artifact_key(a)) not in seen]
    for key, artifact in sorted(fresh, key=_artifact_order):
        kind = artifact_event_type(str(artifact.get("artifact_type", "unknown")))
        events.append(make(kind, ("artifact", key), artifact=artifact))
    return events


_UNDATED = datetime.max.replace(tzinfo=UTC)


def _artifact_order(keyed: tuple[str, JSONDict]) -> tuple[datetime, str]:
    key, artifact = keyed
    try:
        return parse_time(artifact.get("created_at")), key
    except ValueError:
        return _UNDATED, key
