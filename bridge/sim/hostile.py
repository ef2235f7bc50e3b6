"""Hostile listings: valid HTTP and JSON whose content a client must not trust.

Each mutation rewrites one ``GET /agent/runs`` answer the way a buggy API, a
replica serving stale data or a broken proxy could: it never touches the
simulator's state, only the body about to be sent (copy on write, because the
body shares its run dicts with the state).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from .clock import format_ts, parse_ts
from .faults import Fault

__all__ = ["FAR_FUTURE", "mutate_listing"]

FAR_FUTURE = "2099-01-01T00:00:00Z"

Body = dict[str, Any]


def mutate_listing(body: Body, fault: Fault, asked_cursor: str | None) -> Body:
    """The listing ``body`` as the fault's ``mutate`` kind distorts it."""
    mutations: dict[str, Callable[[Body, Fault, str | None], Body]] = {
        "artifact_not_object": _artifact_not_object,
        "run_not_object": _run_not_object,
        "future_updated_at": _future_updated_at,
        "duplicate_stale": _duplicate_stale,
        "repeat_cursor": _repeat_cursor,
    }
    return mutations[str(fault.mutate)](body, fault, asked_cursor)


def _targeted(run: Any, fault: Fault) -> bool:
    return isinstance(run, dict) and (fault.run_id is None or run.get("run_id") == fault.run_id)


def _each_target(body: Body, fault: Fault, change: Callable[[dict[str, Any]], Any]) -> Body:
    runs = [change(dict(run)) if _targeted(run, fault) else run for run in body["runs"]]
    return {**body, "runs": [item for entry in runs for item in (entry if isinstance(entry, tuple) else (entry,))]}


def _junk(fault: Fault, default: Any) -> Any:
    return fault.value if fault.value_given else default


def _artifact_not_object(body: Body, fault: Fault, _cursor: str | None) -> Body:
    def change(run: dict[str, Any]) -> dict[str, Any]:
        run["artifacts"] = [*(run.get("artifacts") or []), _junk(fault, None)]
        return run

    return _each_target(body, fault, change)


def _run_not_object(body: Body, fault: Fault, _cursor: str | None) -> Body:
    return {**body, "runs": [_junk(fault, 42), *body["runs"]]}


def _future_updated_at(body: Body, fault: Fault, _cursor: str | None) -> Body:
    def change(run: dict[str, Any]) -> dict[str, Any]:
        run["updated_at"] = str(_junk(fault, FAR_FUTURE))
        return run

    return _each_target(body, fault, change)


def _duplicate_stale(body: Body, fault: Fault, _cursor: str | None) -> Body:
    """Before the run, a copy of it as it was a second earlier (or as ``patch`` says)."""

    def change(run: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        earlier = format_ts(parse_ts(str(run["updated_at"])) - timedelta(seconds=1))
        stale = {**run, "updated_at": earlier, **(fault.patch or {})}
        return stale, run

    return _each_target(body, fault, change)


def _repeat_cursor(body: Body, _fault: Fault, asked_cursor: str | None) -> Body:
    """Answer a page asked for with cursor C with "more after C": the client is sent in a circle.

    The first page (no cursor) keeps its genuine next cursor, so the loop starts on page two.
    """
    if asked_cursor is None:
        return body
    return {**body, "page_info": {"has_next_page": True, "next_cursor": asked_cursor}}
