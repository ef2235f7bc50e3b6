"""GET /agent/runs query parameters: parsed and validated the way the API does, or a 400.

Empty values count as absent because the SDK never sends them; unknown keys
are ignored like the real API does.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import get_args

from oz_agent_sdk.types.agent import RunSourceType, RunState

from .clock import parse_ts_ns
from .errors import SimError

__all__ = [
    "ARTIFACT_TYPE_VALUES",
    "EMPTY_ENVIRONMENT",
    "RUN_SOURCES",
    "RUN_STATES",
    "Filters",
    "ListQuery",
    "Position",
    "SortValue",
    "bad_request",
    "parse_list_query",
]

# Taken from the SDK so a new state or source is accepted as soon as the SDK knows it.
RUN_STATES: tuple[str, ...] = get_args(RunState)
RUN_SOURCES: tuple[str, ...] = get_args(RunSourceType)
ARTIFACT_TYPE_VALUES = ("PLAN", "PULL_REQUEST", "SCREENSHOT", "FILE", "EXTERNAL_REFERENCE")
SORT_FIELDS = ("updated_at", "created_at", "title", "agent")
EMPTY_ENVIRONMENT = "empty-environment"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_METADATA_PAIRS = 5

_METADATA_KEY = re.compile(r"^metadata\[([^\[\]]+)\]$")

SortValue = int | str | tuple[int, str]
Position = tuple[SortValue, str]


@dataclass(frozen=True)
class Filters:
    states: tuple[str, ...] = ()
    source: str | None = None
    name: str | None = None
    creator: str | None = None
    environment_id: str | None = None
    skill_specs: tuple[str, ...] = ()
    artifact_type: str | None = None
    execution_location: str | None = None
    executor: str | None = None
    schedule_id: str | None = None
    ancestor_run_id: str | None = None
    model_id: str | None = None
    automation_id: str | None = None
    factory_uid: str | None = None
    q: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    updated_after_ns: int | None = None
    created_after_ns: int | None = None
    created_before_ns: int | None = None


@dataclass(frozen=True)
class ListQuery:
    limit: int = DEFAULT_LIMIT
    sort_by: str = "updated_at"
    sort_order: str = "desc"
    filters: Filters = field(default_factory=Filters)
    cursor: str | None = None

    def identity(self) -> str:
        """Fingerprint of everything that defines the result set and its order."""
        blob = json.dumps([self.sort_by, self.sort_order, asdict(self.filters)], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def bad_request(detail: str) -> SimError:
    return SimError(400, detail, error_code="invalid_request")


def _choice(value: str | None, name: str, allowed: Sequence[str]) -> str | None:
    if value is not None and value not in allowed:
        raise bad_request(f"invalid {name} {value!r}; expected one of {', '.join(allowed)}")
    return value


def _timestamp(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_ts_ns(value)
    except ValueError:
        raise bad_request(f"invalid {name} {value!r}: expected an RFC3339 timestamp with offset") from None


def parse_list_query(pairs: Iterable[tuple[str, str]]) -> ListQuery:
    """Validate query pairs (repeats preserved) into a ListQuery, or raise 400.

    Empty values count as absent because the SDK never sends them; unknown
    keys are ignored like the real API does.
    """
    multi: dict[str, list[str]] = {}
    metadata: list[tuple[str, str]] = []
    for key, value in pairs:
        if value == "":
            continue
        m = _METADATA_KEY.match(key)
        if m:
            metadata.append((m.group(1), value))
        else:
            multi.setdefault(key, []).append(value)

    def one(key: str) -> str | None:
        values = multi.get(key)
        return values[0] if values else None

    limit = DEFAULT_LIMIT
    raw_limit = one("limit")
    if raw_limit is not None:
        if not re.fullmatch(r"\d+", raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise bad_request(f"invalid limit {raw_limit!r}: must be an integer between 1 and {MAX_LIMIT}")
        limit = int(raw_limit)
    if len(metadata) > MAX_METADATA_PAIRS:
        raise bad_request(f"at most {MAX_METADATA_PAIRS} metadata filter pairs are allowed")
    states = multi.get("state", [])
    for state in states:
        _choice(state, "state", RUN_STATES)
    skills = sorted({v for k in ("skill_spec", "skill") if (v := one(k)) is not None})
    filters = Filters(
        states=tuple(sorted(set(states))),
        source=_choice(one("source"), "source", RUN_SOURCES),
        name=one("name"),
        creator=one("creator"),
        environment_id=one("environment_id"),
        skill_specs=tuple(skills),
        artifact_type=_choice(one("artifact_type"), "artifact_type", ARTIFACT_TYPE_VALUES),
        execution_location=_choice(one("execution_location"), "execution_location", ("LOCAL", "REMOTE")),
        executor=one("executor"),
        schedule_id=one("schedule_id"),
        ancestor_run_id=one("ancestor_run_id"),
        model_id=one("model_id"),
        automation_id=one("automation_id"),
        factory_uid=one("factory_uid"),
        q=one("q"),
        metadata=tuple(sorted(metadata)),
        updated_after_ns=_timestamp(one("updated_after"), "updated_after"),
        created_after_ns=_timestamp(one("created_after"), "created_after"),
        created_before_ns=_timestamp(one("created_before"), "created_before"),
    )
    return ListQuery(
        limit=limit,
        sort_by=_choice(one("sort_by"), "sort_by", SORT_FIELDS) or "updated_at",
        sort_order=_choice(one("sort_order"), "sort_order", ("asc", "desc")) or "desc",
        filters=filters,
        cursor=one("cursor"),
    )
