"""The simulator's in-memory world: runs, their visible history, and logs.

Each run keeps its *truth* (latest written state) plus snapshots with a
visibility time. API reads see the newest snapshot that is visible now, which
models replication lag: an update can surface late with an ``updated_at`` older
than what a poller has already seen.
"""

from __future__ import annotations

import copy
import secrets
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .artifact_api import ArtifactContents
from .artifacts import make_artifact, make_attachment
from .clock import Clock, SimClock, format_ts, parse_ts, to_ns
from .creation import RunCreation
from .cursor import CursorCodec
from .errors import SimError
from .faults import Fault, FaultQueue
from .handoff import HandoffLinks
from .listing import ListContext, Position, paginate, paginate_ordered, parse_list_query
from .records import CancelRecord, FollowupRecord, RequestRecord
from .runs import (
    CONTROL_KEYS,
    ENDED_STATES,
    append_artifacts,
    apply_patch,
    cancel_refusal,
    jsonable,
    new_run,
    validate_run,
)
from .sessions import conversation_redirect, session_redirect
from .visibility import Snapshot, VisibleRuns

__all__ = ["FOLLOWUP_MODES", "Simulator"]

FOLLOWUP_MODES = ("normal", "plan", "orchestrate")
_REQUEST_LOG_SIZE = 10_000


@dataclass
class _Run:
    truth: dict[str, Any]
    snapshots: list[Snapshot]
    attachments: list[dict[str, Any]]
    followup_reject: dict[str, Any] | None = None
    followup_transitions: dict[str, str] | None = None


class Simulator:
    """State, clock and fault knobs behind the simulated Oz API."""

    def __init__(
        self,
        api_key: str = "sim-key",
        *,
        clock: Clock | None = None,
        followup_transitions: Mapping[str, str] | None = None,
        cancel_response: str = "CANCELLED",
        factories: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.api_key = api_key
        self.clock: Clock = clock or SimClock()
        # What accepting a follow-up does to a run in a given state.
        self.followup_transitions = dict(followup_transitions or {"BLOCKED": "INPROGRESS"})
        self.cancel_response = cancel_response
        # Which agents (executor uids) each factory has, for the ``factory_uid`` list filter.
        self.factories: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in (factories or {}).items()}
        self.faults = FaultQueue()
        secret = secrets.token_bytes(16)
        self._codec = CursorCodec(secret)
        self._links = HandoffLinks(secret)
        self.artifact_contents = ArtifactContents(secret)
        self.run_creation = RunCreation()
        self._runs: dict[str, _Run] = {}
        self._visible = VisibleRuns()
        self._followups: list[FollowupRecord] = []
        self._cancels: list[CancelRecord] = []
        self._requests: deque[RequestRecord] = deque(maxlen=_REQUEST_LOG_SIZE)

    def now(self) -> datetime:
        return self.clock.now()

    # -- writing runs (control surface) ----------------------------------------

    def create_run(self, **fields: Any) -> dict[str, Any]:
        """Create a run from RunItem fields (missing ones defaulted) and control keys."""
        knobs = {k: fields.pop(k) for k in list(fields) if k in CONTROL_KEYS}
        parent = self._runs.get(str(fields.get("parent_run_id") or ""))
        if parent is not None and parent.truth.get("metadata"):
            # As the API does: the parent's metadata, overridden key by key by the child's own.
            fields["metadata"] = {**parent.truth["metadata"], **(fields.get("metadata") or {})}
        truth = new_run(jsonable(fields), self.now())
        if truth["run_id"] in self._runs:
            raise ValueError(f"run {truth['run_id']} already exists")
        self._commit(_Run(truth={}, snapshots=[], attachments=[]), truth, knobs)
        return copy.deepcopy(truth)

    def update_run(self, run_id: str, /, **fields: Any) -> dict[str, Any]:
        """Patch a run; ``updated_at`` is bumped to now unless given explicitly.

        ``None`` removes an optional field. Control keys: add_artifact,
        attachments, add_attachment, visible_at, visible_after, hidden,
        followup_reject, followup_transitions.
        """
        run = self._require(run_id)
        knobs = {k: fields.pop(k) for k in list(fields) if k in CONTROL_KEYS}
        truth = apply_patch(run.truth, jsonable(fields), self.now())
        self._commit(run, truth, knobs)
        return copy.deepcopy(truth)

    def add_artifact(
        self, run_id: str, artifact_type: str, data: Mapping[str, Any] | None = None, /, **update: Any
    ) -> dict[str, Any]:
        """Append a realistic artifact of ``artifact_type``; returns the artifact."""
        artifact = make_artifact(artifact_type, data, created_at=self.now())
        self.update_run(run_id, add_artifact=artifact, **update)
        return artifact

    def set_attachments(self, run_id: str, attachments: Iterable[Mapping[str, Any]]) -> None:
        """Set the handoff snapshot files (listed only once the run has ended)."""
        self._require(run_id).attachments = [make_attachment(a) for a in attachments]

    def reveal(self, run_id: str | None = None) -> None:
        """Make every delayed or hidden snapshot visible now."""
        for rid in [run_id] if run_id else list(self._runs):
            run = self._require(rid)
            for snap in run.snapshots:
                snap.hidden, snap.visible_at_ns = False, 0
            self._visible.update(rid, run.snapshots, self._now_ns())

    def get_run(self, run_id: str) -> dict[str, Any]:
        """The run's truth, including not-yet-visible changes."""
        return copy.deepcopy(self._require(run_id).truth)

    def visible_run(self, run_id: str) -> dict[str, Any] | None:
        """The run as API clients currently see it, or None if not visible."""
        snap = self._view(run_id)
        return copy.deepcopy(snap.data) if snap else None

    def run_ids(self) -> list[str]:
        return list(self._runs)

    # -- API semantics (shared by HTTP handlers and in-process callers) --------

    def list_runs(self, query: Iterable[tuple[str, str]] | Mapping[str, str], *, copied: bool = True) -> dict[str, Any]:
        """The body of ``GET /agent/runs`` for these query pairs (repeats allowed).

        ``copied=False`` hands out the stored run dicts themselves, for a caller
        that serialises them at once and never mutates them (the HTTP handler).
        """
        parsed = parse_list_query(list(query.items()) if isinstance(query, Mapping) else query)
        ancestor = parsed.filters.ancestor_run_id
        if ancestor and self.visible_run(ancestor) is None:
            raise SimError(404, f"ancestor run {ancestor} not found")
        self._visible.refresh(self._runs, self._now_ns())
        context = ListContext(parent_of=self._parent_of, factories=self.factories)
        if parsed.sort_by == "updated_at":
            body = paginate_ordered(self._walk, parsed, self._codec, context)
        else:
            views = [(snap.data, snap.ts) for snap in self._visible.views()]
            body = paginate(views, parsed, self._codec, context)
        return copy.deepcopy(body) if copied else body

    def retrieve_run(self, run_id: str) -> dict[str, Any]:
        view = self.visible_run(run_id)
        if view is None:
            raise SimError(404, f"run {run_id} not found")
        return view

    def submit_followup(self, run_id: str, message: Any, mode: Any = None) -> None:
        """Accept a follow-up like the API does, or raise SimError."""
        run = self._require_visible(run_id)
        # The SDK's RunSubmitFollowupParams makes ``message`` optional; when given it must say something.
        if message is not None and (not isinstance(message, str) or not message.strip()):
            raise SimError(400, "message must be a non-empty string when given")
        mode = "normal" if mode is None else mode
        if mode not in FOLLOWUP_MODES:
            raise SimError(400, f"invalid mode {mode!r}; expected one of {', '.join(FOLLOWUP_MODES)}")
        if run.followup_reject:
            reject = run.followup_reject
            detail = str(reject.get("detail", "run cannot accept follow-ups right now"))
            raise SimError(int(reject.get("status", 409)), detail, error_code=reject.get("error_code"))
        state = run.truth["state"]
        self._followups.append(FollowupRecord(run_id, message, mode, format_ts(self.now()), state))
        transitions = self.followup_transitions if run.followup_transitions is None else run.followup_transitions
        if state in transitions:
            self.update_run(run_id, state=transitions[state], status_message=None)

    def cancel_run(self, run_id: str) -> str:
        """Cancel following the SDK docstring's status rules, or raise SimError."""
        at = format_ts(self.now())
        run = self._runs.get(run_id)
        state = run.truth["state"] if run else None
        try:
            refusal = cancel_refusal(self._require_visible(run_id).truth)
            if refusal is not None:
                raise refusal
        except SimError as err:
            self._cancels.append(CancelRecord(run_id, at, state, err.status))
            raise
        self.update_run(run_id, state="CANCELLED", status_message={"message": "Run cancelled by user"})
        self._cancels.append(CancelRecord(run_id, at, state, 200))
        return self.cancel_response

    def session_redirect(self, session_uuid: str) -> dict[str, Any]:
        return session_redirect(self._visible_views(), session_uuid)

    def conversation_redirect(self, conversation_id: str) -> dict[str, Any]:
        return conversation_redirect(self._visible_views(), conversation_id)

    def handoff_attachments(self, run_id: str, origin: str) -> dict[str, Any]:
        """Fresh download links, only once the visible run has ended."""
        if self.retrieve_run(run_id)["state"] not in ENDED_STATES:
            return {"attachments": []}
        return {"attachments": self._links.listing(run_id, self._runs[run_id].attachments, self.now(), origin)}

    def attachment_blob(self, run_id: str, attachment_id: str, expires: str, sig: str) -> tuple[bytes, str]:
        """Content and MIME type behind a download link; 403/404 like a bucket."""
        run = self._runs.get(run_id)
        att = next((a for a in run.attachments if a["attachment_id"] == attachment_id), None) if run else None
        if att is None:
            raise SimError(404, "attachment not found")
        self._links.verify(run_id, attachment_id, expires, sig, self.now())
        return str(att["content"]).encode(), str(att.get("mime_type") or "application/octet-stream")

    # -- logs and knobs ----------------------------------------------------------

    def followups(self, run_id: str | None = None) -> list[FollowupRecord]:
        return [f for f in self._followups if run_id is None or f.run_id == run_id]

    def cancels(self, run_id: str | None = None) -> list[CancelRecord]:
        return [c for c in self._cancels if run_id is None or c.run_id == run_id]

    def requests(self, path_prefix: str | None = None, method: str | None = None) -> list[RequestRecord]:
        return [
            r
            for r in self._requests
            if (path_prefix is None or r.path.startswith(path_prefix))
            and (method is None or r.method == method.upper())
        ]

    def record_request(self, record: RequestRecord) -> None:
        self._requests.append(record)

    def clear_requests(self) -> None:
        self._requests.clear()

    def inject_fault(self, status: int | None = None, **options: Any) -> Fault:
        """Make the next ``count`` matching API requests fail, stall, return junk, or lie;
        ``options`` are those of ``Fault.build`` (count, retry_after, path, malformed, mutate, ...)."""
        return self.faults.add(Fault.build(status, **options))

    def reset(self) -> None:
        """Forget runs, logs and faults; keep configuration (key, transitions)."""
        self._runs.clear()
        self._followups.clear()
        self._cancels.clear()
        self._requests.clear()
        self._visible.clear()
        self.faults.clear()
        self.artifact_contents.clear()
        self.run_creation.clear()
        if isinstance(self.clock, SimClock):
            self.clock.reset()

    # -- internals -----------------------------------------------------------------

    def _require(self, run_id: str) -> _Run:
        run = self._runs.get(run_id)
        if run is None:
            raise KeyError(f"unknown run {run_id}")
        return run

    def _require_visible(self, run_id: str) -> _Run:
        run = self._runs.get(run_id)
        if run is None or self._view(run_id) is None:
            raise SimError(404, f"run {run_id} not found")
        return run

    def _commit(self, run: _Run, truth: dict[str, Any], knobs: Mapping[str, Any]) -> None:
        # Validate everything before touching the run so a bad patch changes nothing.
        if knobs.get("add_artifact") is not None:
            append_artifacts(truth, knobs["add_artifact"], self.now())
        validate_run(truth)
        visible_at_ns = self._visible_at_ns(knobs)
        attachments = run.attachments
        if "attachments" in knobs:
            attachments = [make_attachment(a) for a in knobs["attachments"] or []]
        if knobs.get("add_attachment"):
            attachments = [*attachments, make_attachment(knobs["add_attachment"])]
        run.truth, run.attachments = truth, attachments
        if "followup_reject" in knobs:
            run.followup_reject = knobs["followup_reject"]
        if "followup_transitions" in knobs:
            run.followup_transitions = knobs["followup_transitions"]
        self._runs[truth["run_id"]] = run
        ts = {k: to_ns(parse_ts(truth[k])) for k in ("created_at", "updated_at")}
        run.snapshots.append(Snapshot(copy.deepcopy(truth), ts, visible_at_ns, bool(knobs.get("hidden"))))
        self._visible.refresh(self._runs, self._now_ns())
        self._visible.update(truth["run_id"], run.snapshots, self._now_ns())
        current = self._visible.view(truth["run_id"])
        if current is not None:
            # Snapshots older than one already visible can never be seen again.
            run.snapshots = run.snapshots[next(i for i, s in enumerate(run.snapshots) if s is current) :]

    def _visible_at_ns(self, knobs: Mapping[str, Any]) -> int:
        if knobs.get("visible_at") is not None:
            at = knobs["visible_at"]
            return to_ns(at if isinstance(at, datetime) else parse_ts(str(at)))
        if knobs.get("visible_after") is not None:
            return to_ns(self.now()) + int(float(knobs["visible_after"]) * 1e9)
        return 0

    def _visible_views(self) -> list[dict[str, Any]]:
        self._visible.refresh(self._runs, self._now_ns())
        return [snap.data for snap in self._visible.views()]

    def _parent_of(self, run_id: str) -> str | None:
        run = self._runs.get(run_id)
        parent = run.truth.get("parent_run_id") if run else None
        return str(parent) if parent else None

    def _now_ns(self) -> int:
        return to_ns(self.now())

    def _view(self, run_id: str) -> Snapshot | None:
        self._visible.refresh(self._runs, self._now_ns())
        return self._visible.view(run_id)

    def _walk(self, after: Position | None, ascending: bool) -> Iterator[tuple[dict[str, Any], dict[str, int]]]:
        for snap in self._visible.walk(after, ascending):  # type: ignore[arg-type]
            yield snap.data, snap.ts
