"""The two public redirect checks between a shared session and its conversation transcript.

``GET /agent/sessions/{uuid}/redirect`` and ``GET /agent/conversations/{id}/redirect``
need no credentials (anonymous viewers resolve shared links with them); an id
that matches no run is a 404.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import SimError
from .runs import FINISHED_STATES

__all__ = ["conversation_redirect", "session_redirect"]

Run = Mapping[str, Any]


def session_ids(run: Run) -> set[str]:
    """A run's shared session: its ``session_id``, or the uuid its ``session_link`` ends in."""
    ids = {str(run["session_id"])} if run.get("session_id") else set()
    link = run.get("session_link")
    if isinstance(link, str) and link.rstrip("/"):
        ids.add(link.rstrip("/").rsplit("/", 1)[-1])
    return ids


def session_redirect(runs: Iterable[Run], session_uuid: str) -> dict[str, Any]:
    """The conversation to show instead, once the sandbox has finished; ``{}`` while it runs."""
    run = next((r for r in runs if session_uuid in session_ids(r)), None)
    if run is None:
        raise SimError(404, f"session {session_uuid} not found")
    done = run["state"] in FINISHED_STATES and run.get("conversation_id")
    return {"conversation_id": run["conversation_id"]} if done else {}


def conversation_redirect(runs: Iterable[Run], conversation_id: str) -> dict[str, Any]:
    """The live shared session to show instead, while there is one; ``{}`` afterwards."""
    run = next((r for r in runs if r.get("conversation_id") == conversation_id), None)
    if run is None:
        raise SimError(404, f"conversation {conversation_id} not found")
    session = run.get("session_id") or next(iter(session_ids(run)), None)
    return {"session_id": session} if session and run["state"] not in FINISHED_STATES else {}
