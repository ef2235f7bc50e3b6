"""GET /agent/runs semantics: query parsing, filtering, ordering, keyset cursors.

Pure functions over RunItem JSON dicts so they can be property-tested without
HTTP. Cursors are keyset cursors (last item's sort key + run_id), so pages stay
consistent while runs change between requests; offsets would skip or repeat.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, get_args

from oz_agent_sdk.types.agent import RunSourceType, RunState

from .clock import parse_ts_ns
from .errors import SimError

if TYPE_CHECKING:
    from .cursor import CursorCodec

__all__ = [
    "ARTIFACT_TYPE_VALUES",
    "RUN_SOURCES",
    "RUN_STATES",
    "Filters",
    "ListQuery",
    "Position",
    "SortValue",
    "paginate",
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


def _get(run: Mapping[str, Any], *path: str) -> Any:
    node: Any = run
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _skill_spec(run: Mapping[str, Any]) -> str | None:
    spec = _get(run, "agent_config", "skill_spec")
    if spec:
        return str(spec)
    skills = _get(run, "agent_config", "skills")
    return str(skills[0]) if isinstance(skills, list) and skills else None


def _is_descendant(run: Mapping[str, Any], ancestor: str, parent_of: Mapping[str, str | None]) -> bool:
    seen: set[str] = set()
    parent = run.get("parent_run_id")
    while parent and parent not in seen:
        if parent == ancestor:
            return True
        seen.add(parent)
        parent = parent_of.get(parent)
    return False


def matches(run: Mapping[str, Any], f: Filters, ts_ns: Mapping[str, int], parent_of: Mapping[str, str | None]) -> bool:
    """Whether ``run`` passes every filter (AND); ``ts_ns`` holds its parsed times."""
    checks: list[tuple[Any, Any]] = [
        (f.source, run.get("source")),
        (f.name, _get(run, "agent_config", "name")),
        (f.creator, _get(run, "creator", "uid")),
        (f.executor, _get(run, "executor", "uid")),
        (f.execution_location, run.get("execution_location")),
        (f.schedule_id, _get(run, "schedule", "schedule_id")),
        (f.model_id, _get(run, "agent_config", "model_id")),
        (f.automation_id, _get(run, "metadata", "automation_id")),
    ]
    if any(want is not None and want != have for want, have in checks):
        return False
    if f.states and run.get("state") not in f.states:
        return False
    if f.environment_id is not None:
        env = _get(run, "agent_config", "environment_id") or None
        if env != (None if f.environment_id == EMPTY_ENVIRONMENT else f.environment_id):
            return False
    spec = _skill_spec(run)
    if any(spec != want for want in f.skill_specs):
        return False
    if f.artifact_type is not None:
        kinds = {a.get("artifact_type") for a in run.get("artifacts") or [] if isinstance(a, Mapping)}
        if f.artifact_type not in kinds:
            return False
    if f.q is not None:
        needle = f.q.casefold()
        hay = (str(run.get("title", "")), str(run.get("prompt", "")), spec or "")
        if not any(needle in h.casefold() for h in hay):
            return False
    meta = run.get("metadata") or {}
    if any(meta.get(k) != v for k, v in f.metadata):
        return False
    if f.ancestor_run_id is not None and not _is_descendant(run, f.ancestor_run_id, parent_of):
        return False
    # Documented as "after"/"before": strict comparisons on both ends.
    if f.updated_after_ns is not None and not ts_ns["updated_at"] > f.updated_after_ns:
        return False
    if f.created_after_ns is not None and not ts_ns["created_at"] > f.created_after_ns:
        return False
    return f.created_before_ns is None or ts_ns["created_at"] < f.created_before_ns


def sort_value(run: Mapping[str, Any], sort_by: str, ts_ns: Mapping[str, int]) -> SortValue:
    if sort_by in ("updated_at", "created_at"):
        return ts_ns[sort_by]
    if sort_by == "title":
        return str(run.get("title", "")).casefold()
    spec = _skill_spec(run)
    return (0, spec) if spec is not None else (1, "")


def compare(a: Position, b: Position, sort_by: str, order: str) -> int:
    """Total order on (sort value, run_id); run_id breaks ties so keysets work."""
    av, bv = a[0], b[0]
    if sort_by == "agent" and isinstance(av, tuple) and isinstance(bv, tuple):
        if av[0] != bv[0]:
            # Runs without a skill stay last in both directions, as documented.
            return -1 if av[0] < bv[0] else 1
        av, bv = av[1], bv[1]
    primary = (av > bv) - (av < bv)  # type: ignore[operator]
    if primary == 0:
        primary = (a[1] > b[1]) - (a[1] < b[1])
    return primary if order == "asc" else -primary


def paginate(
    runs: Sequence[tuple[Mapping[str, Any], Mapping[str, int]]],
    query: ListQuery,
    codec: CursorCodec,
    parent_of: Mapping[str, str | None],
) -> dict[str, Any]:
    """Build the ``{"runs", "page_info"}`` body from visible runs and their times."""
    after = codec.decode(query.cursor, query) if query.cursor else None
    positioned: list[tuple[Position, Mapping[str, Any]]] = []
    for run, ts in runs:
        if not matches(run, query.filters, ts, parent_of):
            continue
        pos: Position = (sort_value(run, query.sort_by, ts), str(run["run_id"]))
        if after is None or compare(pos, after, query.sort_by, query.sort_order) > 0:
            positioned.append((pos, run))
    Entry = tuple[Position, Mapping[str, Any]]

    def by_position(x: Entry, y: Entry) -> int:
        return compare(x[0], y[0], query.sort_by, query.sort_order)

    positioned.sort(key=functools.cmp_to_key(by_position))
    page = positioned[: query.limit]
    has_next = len(positioned) > query.limit
    return {
        "runs": [dict(run) for _, run in page],
        "page_info": {
            "has_next_page": has_next,
            "next_cursor": codec.encode(page[-1][0], query) if has_next else None,
        },
    }
