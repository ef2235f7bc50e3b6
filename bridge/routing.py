"""Pure routing: which targets an event reaches, from the routes in config.

An event goes to the union of the targets of every matching route, once per
target, in the order the routes name them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from bridge.events import DIGEST, KNOWN_EVENT_TYPES, Event, JSONDict, run_cost_usd
from bridge.settings import RouteSettings

_PATTERN_CHARS = re.compile(r"^[a-z0-9_.*?\[\]!-]+$")
_FAMILIES = ("run.", "artifact.")


def pattern_problem(pattern: str) -> str | None:
    """Why an event pattern can never be what its author meant, or ``None``."""
    if pattern == DIGEST:
        return "digests are not routed: list a digest's targets in its own to (digests[].to)"
    if not _PATTERN_CHARS.match(pattern):
        return (
            f"{pattern!r} is not an event pattern (lower-case names and the globs * ? [ ]), e.g. run.failed, run.*, *"
        )
    if pattern.count("[") != pattern.count("]"):
        return f"{pattern!r} has an unbalanced [ ]"
    if not any(c in pattern for c in "*?[") and pattern.startswith("run.") and pattern not in KNOWN_EVENT_TYPES:
        known = ", ".join(t for t in KNOWN_EVENT_TYPES if t.startswith("run."))
        return f"{pattern!r} is not an event type; run events are {known}"
    if pattern[0] not in "*?[" and not pattern.startswith(_FAMILIES):
        return f"{pattern!r} matches no event: event types start with run. or artifact."
    return None


def _creator_values(event: Event) -> list[str]:
    creator = event.fields.get("creator") or {}
    return [str(creator[k]) for k in ("uid", "email", "display_name") if creator.get(k)]


def _config(event: Event) -> JSONDict:
    config = event.fields.get("agent_config")
    return config if isinstance(config, dict) else {}


def _skill_values(event: Event) -> list[str]:
    skill = event.fields.get("agent_skill") or {}
    values = [_config(event).get("skill_spec")]
    values += [skill.get(k) for k in ("name", "full_path", "bundled_skill_id")]
    return [str(v) for v in values if v]


def _one(value: object) -> list[str]:
    return [str(value)] if value else []


# Each matcher field of a route and how to read the values it compares from an event.
_MATCHERS: dict[str, Callable[[Event], list[str]]] = {
    "sources": lambda e: _one(e.fields.get("source")),
    "states": lambda e: _one(e.fields.get("state")),
    "creators": _creator_values,
    "names": lambda e: _one(_config(e).get("name")),
    "environments": lambda e: _one(_config(e).get("environment_id")),
    "skills": _skill_values,
    "artifact_types": lambda e: _one((e.artifact or {}).get("artifact_type")),
}


def _any_matches(patterns: Iterable[str], values: list[str]) -> bool:
    lowered = [v.lower() for v in values]
    return any(fnmatchcase(v, p.lower()) for p in patterns for v in lowered)


def _metadata_mismatch(wanted: dict[str, str], event: Event) -> str | None:
    metadata = event.fields.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    for key, pattern in wanted.items():
        # Keys are case-sensitive, as the API's; values compare like every other matcher.
        if key not in metadata:
            return f"metadata.{key}: the run has no such key"
        if not _any_matches([pattern], [str(metadata[key])]):
            return f"metadata.{key}: {str(metadata[key])!r} does not match {pattern!r}"
    return None


def mismatch(route: RouteSettings, event: Event) -> str | None:
    """Why ``route`` does not take ``event`` (the first reason found), or ``None`` when it does."""
    if not any(fnmatchcase(event.type, pattern) for pattern in route.events):
        return f"{event.type} is not one of its events ({', '.join(route.events)})"
    for field, read in _MATCHERS.items():
        patterns = getattr(route, field)
        if patterns is not None:
            values = read(event)
            if not _any_matches(patterns, values):
                shown = ", ".join(values) or "nothing"
                return f"{field}: the run has {shown}, which matches none of {', '.join(patterns)}"
    if route.metadata:
        problem = _metadata_mismatch(route.metadata, event)
        if problem:
            return problem
    if route.min_cost_usd is not None:
        cost = run_cost_usd(event.fields)
        if cost < route.min_cost_usd:
            return f"min_cost_usd: the run has cost ${cost:,.2f}, less than ${route.min_cost_usd:,.2f}"
    return None


def route_matches(route: RouteSettings, event: Event) -> bool:
    return mismatch(route, event) is None


def matching_routes(event: Event, routes: Sequence[RouteSettings]) -> list[RouteSettings]:
    return [route for route in routes if route_matches(route, event)]


@dataclass(frozen=True)
class RunTarget:
    """A target an event reaches because of what its run carries, whatever the routes say."""

    name: str
    applies: Callable[[Event], bool]


def targets_for(event: Event, routes: Sequence[RouteSettings], run_targets: Sequence[RunTarget] = ()) -> list[str]:
    """Target names the event reaches, each once, in first-mentioned order (run targets last)."""
    targets: dict[str, None] = {}
    for route in matching_routes(event, routes):
        targets.update(dict.fromkeys(route.to))
    targets.update(dict.fromkeys(t.name for t in run_targets if t.applies(event)))
    return list(targets)
