"""Realistic ArtifactItem payloads, one builder per ``artifact_type``.

Shapes follow ``oz_agent_sdk.types.agent.artifact_item`` field for field;
callers override any ``data`` key and get plausible values for the rest.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from .clock import format_ts

__all__ = ["ARTIFACT_TYPES", "make_artifact", "make_attachment"]

ARTIFACT_TYPES = ("PLAN", "PULL_REQUEST", "SCREENSHOT", "FILE", "EXTERNAL_REFERENCE")

# Pull request numbers only need to look plausible and differ within a session.
_pr_numbers = itertools.count(4211)


def _uid() -> str:
    return uuid.uuid4().hex[:22]


def _plan() -> dict[str, Any]:
    notebook = _uid()
    return {
        "document_uid": _uid(),
        "artifact_uid": _uid(),
        "notebook_uid": notebook,
        "title": "Implementation plan",
        "url": f"https://app.warp.dev/drive/notebook/{notebook}",
    }


def _pull_request() -> dict[str, Any]:
    number = next(_pr_numbers)
    return {
        "branch": f"oz/agent-change-{number}",
        "url": f"https://github.com/acme/widgets/pull/{number}",
    }


def _screenshot() -> dict[str, Any]:
    return {
        "artifact_uid": _uid(),
        "mime_type": "image/png",
        "description": "Screenshot of the app after the change",
    }


def _file() -> dict[str, Any]:
    return {
        "artifact_uid": _uid(),
        "filename": "report.md",
        "filepath": "outputs/report.md",
        "mime_type": "text/markdown",
        "size_bytes": 2048,
        "description": "Summary report written by the agent",
        "title": "Report",
    }


def _external_reference() -> dict[str, Any]:
    return {
        "reference_type": "linear_issue",
        "url": "https://linear.app/acme/issue/ENG-1234",
        "title": "ENG-1234",
        "metadata": {"team": "ENG"},
    }


_BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "PLAN": _plan,
    "PULL_REQUEST": _pull_request,
    "SCREENSHOT": _screenshot,
    "FILE": _file,
    "EXTERNAL_REFERENCE": _external_reference,
}


def make_artifact(
    artifact_type: str,
    data: Mapping[str, Any] | None = None,
    *,
    created_at: datetime | str,
) -> dict[str, Any]:
    """Build one ArtifactItem JSON object; ``data`` keys override defaults."""
    builder = _BUILDERS.get(artifact_type)
    if builder is None:
        raise ValueError(f"unknown artifact_type {artifact_type!r}; expected one of {ARTIFACT_TYPES}")
    payload = builder()
    payload.update(data or {})
    if artifact_type == "FILE" and data and "filepath" in data and "filename" not in data:
        # filename is documented as the last path component of filepath.
        payload["filename"] = str(data["filepath"]).rsplit("/", 1)[-1]
    stamp = created_at if isinstance(created_at, str) else format_ts(created_at)
    return {"artifact_type": artifact_type, "created_at": stamp, "data": payload}


def make_attachment(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Normalise a handoff snapshot attachment (internal, not part of RunItem)."""
    filename = str(spec.get("filename") or "snapshot.tar.gz")
    return {
        "attachment_id": str(spec.get("attachment_id") or _uid()),
        "filename": filename,
        "mime_type": spec.get("mime_type", "application/gzip"),
        "content": str(spec.get("content", f"simulated contents of {filename}\n")),
    }
