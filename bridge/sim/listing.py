"""GET /agent/runs semantics: filtering, ordering, keyset cursors.

Pure functions over RunItem JSON dicts so they can be property-tested without
HTTP. Cursors are keyset cursors (last item's sort key + run_id), so pages stay
consistent while runs change between requests; offsets would skip or repeat.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .query import (
    ARTIFACT_TYPE_VALUES,
    EMPTY_ENVIRONMENT,
    RUN_SOURCES,
    RUN_STATES,
    Filters,
    ListQuery,
    Position,
    SortValue,
    bad_request,
    parse_list_query,
)

if TYPE_CHECKING:
    from .cursor import CursorCodec

__all__ = [
    "ARTIFACT_TYPE_VALUES",
    "RUN_SOURCES",
    "RUN_STATES",
    "Filters",
    "ListContext",
    "ListQuery",
    "Position",
    "SortValue",
    "bad_request",
    "paginate",
    "paginate_ordered",
    "parse_list_query",
]


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


def _is_descendant(run: Mapping[str, Any], ancestor: str, parent_of: Callable[[str], str | None]) -> bool:
    seen: set[str] = set()
    parent = run.get("parent_run_id")
    while parent and parent not in seen:
        if parent == ancestor:
            return True
        seen.add(parent)
        parent = parent_of(parent)
    return False


@dataclass(frozen=True)
class ListContext:
    """What filters need beyond the run itself: its ancestry, and which agents make up each factory."""

    parent_of: Callable[[str], str | None]
    factories: Mapping[str, frozenset[str]] = field(default_factory=dict)


def _in_factory(run: Mapping[str, Any], factory_uid: str, factories: Mapping[str, frozenset[str]]) -> bool:
    # "Matches runs executed by any of the factory's agents"; an unknown factory matches nothing.
    return _get(run, "executor", "uid") in factories.get(factory_uid, frozenset())


def matches(run: Mapping[str, Any], f: Filters, ts_ns: Mapping[str, int], context: ListContext) -> bool:
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
    if f.ancestor_run_id is not None and not _is_descendant(run, f.ancestor_run_id, context.parent_of):
        return False
    if f.factory_uid is not None and not _in_factory(run, f.factory_uid, context.factories):
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
    context: ListContext,
) -> dict[str, Any]:
    """Build the ``{"runs", "page_info"}`` body from visible runs and their times, in any sort."""
    after = codec.decode(query.cursor, query) if query.cursor else None
    positioned: list[tuple[Position, Mapping[str, Any]]] = []
    for run, ts in runs:
        if not matches(run, query.filters, ts, context):
            continue
        pos: Position = (sort_value(run, query.sort_by, ts), str(run["run_id"]))
        if after is None or compare(pos, after, query.sort_by, query.sort_order) > 0:
            positioned.append((pos, run))
    Entry = tuple[Position, Mapping[str, Any]]

    def by_position(x: Entry, y: Entry) -> int:
        return compare(x[0], y[0], query.sort_by, query.sort_order)

    positioned.sort(key=functools.cmp_to_key(by_position))
    return _body(positioned[: query.limit + 1], query, codec)


Walk = Iterator[tuple[Mapping[str, Any], Mapping[str, int]]]


def paginate_ordered(
    walk_from: Callable[[Position | None, bool], Walk], query: ListQuery, codec: CursorCodec, context: ListContext
) -> dict[str, Any]:
    """The same body for ``sort_by=updated_at``, read from runs already in that order.

    ``walk_from(after, ascending)`` yields runs strictly after the (updated_at ns,
    run_id) position ``after``; only one page's worth is filtered and none sorted.
    """
    if query.sort_by != "updated_at":
        raise ValueError("ordered pagination only serves sort_by=updated_at")
    ascending = query.sort_order == "asc"
    after = codec.decode(query.cursor, query) if query.cursor else None
    floor = query.filters.updated_after_ns
    if ascending and floor is not None and (after is None or (floor, _LAST_ID) > after):
        after = (floor, _LAST_ID)  # type: ignore[assignment]
    found: list[tuple[Position, Mapping[str, Any]]] = []
    for run, ts in walk_from(after, ascending):  # type: ignore[arg-type]
        if not ascending and floor is not None and ts["updated_at"] <= floor:
            break  # descending: everything further is older than updated_after
        if matches(run, query.filters, ts, context):
            found.append(((ts["updated_at"], str(run["run_id"])), run))
            if len(found) > query.limit:
                break
    return _body(found, query, codec)


# Sorts after every run id, so (t, _LAST_ID) is "just after every run updated at t".
_LAST_ID = "\U0010ffff"


def _body(positioned: list[tuple[Position, Mapping[str, Any]]], query: ListQuery, codec: CursorCodec) -> dict[str, Any]:
    page = positioned[: query.limit]
    has_next = len(positioned) > query.limit
    return {
        "runs": [dict(run) for _, run in page],
        "page_info": {
            "has_next_page": has_next,
            "next_cursor": codec.encode(page[-1][0], query) if has_next else None,
        },
    }
