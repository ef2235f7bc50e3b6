"""``GET /agent/artifacts/{uid}``: a plan's markdown, or a signed download URL for a screenshot or file.

Shaped like ``oz_agent_sdk.types.AgentGetArtifactResponse`` (Plan/Screenshot/File
variants). Download URLs are served by the simulator itself, time-limited and
signed like the handoff links, so clients exercise the whole download path.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .clock import format_ts
from .errors import SimError
from .handoff import HandoffLinks

if TYPE_CHECKING:
    from .state import Simulator

__all__ = ["ArtifactContents", "add_plan", "add_screenshot", "get_artifact"]

LINK_TTL = timedelta(minutes=15)
_BLOB_SCOPE = "artifacts"  # the signer's "run id" slot: artifact links are not per run
# The smallest valid PNG (1 by 1, transparent): what a screenshot holds unless a test says otherwise.
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
DEFAULT_PLAN = """# Implementation plan

1. Reproduce the problem with a failing test.
2. Fix the cause, not the symptom.
3. Run the whole suite and open a pull request.
"""


class ArtifactContents:
    """What an artifact holds beyond its listing: a plan's markdown, a file's bytes."""

    def __init__(self, secret: bytes) -> None:
        self._links = HandoffLinks(secret, ttl=LINK_TTL)
        self._contents: dict[str, tuple[bytes | str, str]] = {}

    def set(self, uid: str, content: bytes | str, content_type: str) -> None:
        self._contents[uid] = (content, content_type)

    def get(self, uid: str) -> tuple[bytes | str, str] | None:
        return self._contents.get(uid)

    def clear(self) -> None:
        self._contents.clear()

    def download_url(self, uid: str, now: datetime, origin: str) -> tuple[str, datetime]:
        [item] = self._links.listing(_BLOB_SCOPE, [{"attachment_id": uid, "filename": uid}], now, origin)
        url = str(item["download_url"]).replace(f"/_sim/blobs/{_BLOB_SCOPE}/", "/_sim/artifact-blobs/", 1)
        return url, now + LINK_TTL

    def blob(self, uid: str, expires: str, sig: str, now: datetime) -> tuple[bytes, str]:
        self._links.verify(_BLOB_SCOPE, uid, expires, sig, now)
        found = self._contents.get(uid)
        if found is None:
            raise SimError(404, "artifact content not found")
        content, content_type = found
        return (content.encode() if isinstance(content, str) else content), content_type


def _find(sim: Simulator, uid: str) -> dict[str, Any] | None:
    for run_id in sim.run_ids():
        view = sim.visible_run(run_id) or {}
        for artifact in view.get("artifacts") or []:
            data = artifact.get("data") or {}
            if uid in (data.get("artifact_uid"), data.get("document_uid")):
                return dict(artifact)
    return None


def get_artifact(sim: Simulator, uid: str, origin: str) -> dict[str, Any]:
    """The body of ``GET /agent/artifacts/{uid}``, or 404 like the API."""
    artifact = _find(sim, uid)
    if artifact is None:
        raise SimError(404, f"artifact {uid} not found")
    kind, data = artifact["artifact_type"], artifact.get("data") or {}
    head = {
        "artifact_type": kind,
        "artifact_uid": data.get("artifact_uid") or uid,
        "created_at": artifact["created_at"],
    }
    stored = sim.artifact_contents.get(uid)
    if kind == "PLAN":
        content = stored[0] if stored else DEFAULT_PLAN
        plan = {
            "content": content.decode() if isinstance(content, bytes) else content,
            "content_type": "text/markdown",
            "document_uid": data.get("document_uid") or uid,
            "notebook_uid": data.get("notebook_uid") or "",
        }
        plan.update({k: data[k] for k in ("title", "url") if data.get(k)})
        return {**head, "data": plan}
    if kind not in ("SCREENSHOT", "FILE"):
        raise SimError(404, f"artifact {uid} has no retrievable content")
    if stored is None:
        placeholder: bytes | str = TINY_PNG if kind == "SCREENSHOT" else f"contents of {data.get('filename')}\n"
        sim.artifact_contents.set(uid, placeholder, str(data.get("mime_type") or "application/octet-stream"))
    url, expires = sim.artifact_contents.download_url(uid, sim.now(), origin)
    body: dict[str, Any] = {
        "content_type": str(data.get("mime_type") or "application/octet-stream"),
        "download_url": url,
        "expires_at": format_ts(expires),
    }
    keys = ("description",) if kind == "SCREENSHOT" else ("description", "filename", "filepath", "size_bytes", "title")
    body.update({k: data[k] for k in keys if data.get(k) is not None})
    return {**head, "data": body}


# ---- knobs ---------------------------------------------------------------------------------------


def add_plan(sim: Simulator, run_id: str, markdown: str, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A PLAN artifact whose content ``GET /agent/artifacts/{uid}`` returns."""
    artifact = sim.add_artifact(run_id, "PLAN", data)
    sim.artifact_contents.set(artifact["data"]["artifact_uid"], markdown, "text/markdown")
    return artifact


def add_screenshot(
    sim: Simulator, run_id: str, content: bytes = TINY_PNG, mime_type: str = "image/png", description: str = ""
) -> dict[str, Any]:
    data: dict[str, Any] = {"mime_type": mime_type}
    if description:
        data["description"] = description
    artifact = sim.add_artifact(run_id, "SCREENSHOT", data)
    sim.artifact_contents.set(artifact["data"]["artifact_uid"], content, mime_type)
    return artifact


# ---- HTTP ----------------------------------------------------------------------------------------


async def _get_artifact(request: web.Request) -> web.Response:
    from .api import SIM_KEY

    origin = f"{request.scheme}://{request.host}"
    return web.json_response(get_artifact(request.app[SIM_KEY], request.match_info["artifact_uid"], origin))


async def _artifact_blob(request: web.Request) -> web.Response:
    from .api import SIM_KEY

    sim = request.app[SIM_KEY]
    try:
        content, content_type = sim.artifact_contents.blob(
            request.match_info["uid"], request.query.get("expires", ""), request.query.get("sig", ""), sim.now()
        )
    except SimError as err:
        from .errors import problem_response

        return problem_response(err)
    return web.Response(body=content, content_type=content_type)


def add_artifact_routes(app: web.Application, base_path: str) -> None:
    app.router.add_get(f"{base_path}/agent/artifacts/{{artifact_uid}}", _get_artifact)
    app.router.add_get("/_sim/artifact-blobs/{uid}", _artifact_blob)
