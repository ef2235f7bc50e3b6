"""What the bridge can use of the runs in one page of ``GET /agent/runs``.

The API's answer is read as untrusted JSON: every entry is checked for what
the diff, the routes and the store need, and whatever cannot be used is left
out with a reason (``LeftOut``) instead of failing the page. A page may also
hold one run twice (a replica serving a stale copy); only the newest copy
counts, so an older one can never overwrite what a newer one said.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bridge.diff import parse_time
from bridge.events import JSONDict

# The store keeps run ids in a String(128) column; PostgreSQL refuses NUL in text.
MAX_RUN_ID = 128
MAX_NAME = 64  # states and artifact types become event type names

RUN_NOT_OBJECT = "run_not_object"
INVALID_RUN_ID = "invalid_run_id"
INVALID_STATE = "invalid_state"
INVALID_UPDATED_AT = "invalid_updated_at"
INVALID_CREATED_AT = "invalid_created_at"
UPDATED_AT_IN_FUTURE = "updated_at_in_future"
ARTIFACTS_NOT_LIST = "artifacts_not_list"
ARTIFACT_NOT_OBJECT = "artifact_not_object"
INVALID_ARTIFACT_TYPE = "invalid_artifact_type"
DUPLICATE_IN_PAGE = "duplicate_in_page"
UNPROCESSABLE = "unprocessable"

REASONS = (
    RUN_NOT_OBJECT, INVALID_RUN_ID, INVALID_STATE, INVALID_UPDATED_AT, INVALID_CREATED_AT, UPDATED_AT_IN_FUTURE,
    ARTIFACTS_NOT_LIST, ARTIFACT_NOT_OBJECT, INVALID_ARTIFACT_TYPE, DUPLICATE_IN_PAGE, UNPROCESSABLE,
)  # fmt: skip


@dataclass(frozen=True)
class LeftOut:
    """One record (a run, or an artifact of a run) the bridge did not use, and why."""

    reason: str
    run_id: str | None
    detail: str


@dataclass
class PageRuns:
    runs: list[JSONDict] = field(default_factory=list)  # usable, each run_id once, in page order
    left_out: list[LeftOut] = field(default_factory=list)


class Unusable(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _name(value: object, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and "\x00" not in value


def _time(run: JSONDict, name: str, reason: str) -> datetime:
    try:
        return parse_time(run.get(name))
    except (ValueError, TypeError):
        raise Unusable(reason, f"{name} {run.get(name)!r} is not an RFC3339 timestamp") from None


def _usable_artifacts(run_id: str, artifacts: object, left_out: list[LeftOut]) -> list[JSONDict]:
    if artifacts is None:
        return []
    if not isinstance(artifacts, list):
        left_out.append(LeftOut(ARTIFACTS_NOT_LIST, run_id, f"artifacts is a {type(artifacts).__name__}, not a list"))
        return []
    usable: list[JSONDict] = []
    for position, artifact in enumerate(artifacts):
        if not isinstance(artifact, dict):
            detail = f"artifact #{position} is a {type(artifact).__name__}, not an object"
            left_out.append(LeftOut(ARTIFACT_NOT_OBJECT, run_id, detail))
        elif not _name(artifact.get("artifact_type"), MAX_NAME):
            detail = f"artifact #{position} has no usable artifact_type ({artifact.get('artifact_type')!r})"
            left_out.append(LeftOut(INVALID_ARTIFACT_TYPE, run_id, detail))
        else:
            usable.append(artifact)
    return usable


def usable_run(entry: Any, horizon: datetime, left_out: list[LeftOut]) -> tuple[JSONDict, datetime]:
    """The entry as a run the bridge can diff, with its ``updated_at``; raises ``Unusable``.

    Artifacts that cannot be used are dropped from the run (and listed in
    ``left_out``), so one bad artifact never silences the run's other changes.
    """
    if not isinstance(entry, dict):
        raise Unusable(RUN_NOT_OBJECT, f"a {type(entry).__name__} where a run object belongs")
    run_id = entry.get("run_id")
    if not _name(run_id, MAX_RUN_ID):
        raise Unusable(INVALID_RUN_ID, f"run_id {str(run_id)[:40]!r} is not a string of 1-{MAX_RUN_ID} characters")
    if not _name(entry.get("state"), MAX_NAME):
        raise Unusable(INVALID_STATE, f"state {entry.get('state')!r} is not a state name")
    updated_at = _time(entry, "updated_at", INVALID_UPDATED_AT)
    _time(entry, "created_at", INVALID_CREATED_AT)
    if updated_at > horizon:
        raise Unusable(UPDATED_AT_IN_FUTURE, f"updated_at {entry['updated_at']} is after the API's own time")
    artifacts = entry.get("artifacts")
    usable = _usable_artifacts(str(run_id), artifacts, left_out)
    if artifacts is None or (isinstance(artifacts, list) and len(usable) == len(artifacts)):
        return entry, updated_at
    return {**entry, "artifacts": usable}, updated_at


def read_page(entries: Sequence[Any], horizon: datetime) -> PageRuns:
    """Usable runs of one page (newest copy of each), and everything left out."""
    page = PageRuns()
    newest: dict[str, tuple[datetime, int, JSONDict]] = {}
    for position, entry in enumerate(entries):
        try:
            run, updated_at = usable_run(entry, horizon, page.left_out)
        except Unusable as problem:
            run_id = entry.get("run_id") if isinstance(entry, dict) else None
            page.left_out.append(LeftOut(problem.reason, run_id if isinstance(run_id, str) else None, str(problem)))
            continue
        run_id = str(run["run_id"])
        kept = newest.get(run_id)
        if kept is not None:
            older = kept if kept[0] <= updated_at else (updated_at, position, run)
            detail = f"an older copy (updated_at {older[2]['updated_at']}) in the same page"
            page.left_out.append(LeftOut(DUPLICATE_IN_PAGE, run_id, detail))
            if older is not kept:
                continue
        newest[run_id] = (updated_at, position, run)
    page.runs = [run for _, _, run in sorted(newest.values(), key=lambda kept: kept[1])]
    return page


def newest_updated_at(runs: Iterable[JSONDict]) -> datetime | None:
    return max((parse_time(run["updated_at"]) for run in runs), default=None)
