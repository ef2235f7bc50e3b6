"""``oz-bridge routes test``: where an event would go and what each target would get."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bridge.events import (
    ARTIFACT_EVENT_TYPES,
    RUN_CREATED,
    STATE_EVENT_TYPES,
    Event,
    JSONDict,
    event_id,
    rfc3339,
)
from bridge.notifiers.console import describe
from bridge.routing import matching_routes
from bridge.settings import ConfigError, ConsoleTarget, Settings, SlackTarget, WebhookTarget

_STATE_OF_EVENT = {kind: state for state, kind in STATE_EVENT_TYPES.items()}
_ARTIFACT_OF_EVENT = {kind: artifact for artifact, kind in ARTIFACT_EVENT_TYPES.items()}


def sample_run(state: str) -> JSONDict:
    now = rfc3339(datetime.now(UTC).replace(microsecond=0))
    return {
        "run_id": "00000000-0000-4000-8000-000000000001",
        "task_id": "00000000-0000-4000-8000-000000000001",
        "title": "Fix the flaky checkout test",
        "prompt": "The checkout integration test fails one time in five; find out why and fix it.",
        "state": state,
        "created_at": now,
        "updated_at": now,
        "source": "API",
        "creator": {"uid": "u_1", "display_name": "Ada Lovelace", "email": "ada@example.com", "type": "user"},
        "session_link": "https://app.warp.dev/session/00000000",
        "artifacts": [],
        **(
            {"status_message": {"message": "Tests still failing after 3 attempts", "error_code": "internal_error"}}
            if state in ("FAILED", "ERROR", "BLOCKED")
            else {}
        ),
    }


def sample_artifact(artifact_type: str) -> JSONDict:
    created = rfc3339(datetime.now(UTC).replace(microsecond=0))
    data: JSONDict = {
        "PULL_REQUEST": {"url": "https://github.com/acme/shop/pull/42", "branch": "fix/flaky-checkout"},
        "PLAN": {
            "document_uid": "doc_1",
            "title": "Plan: stabilise checkout",
            "url": "https://app.warp.dev/drive/doc_1",
        },
        "SCREENSHOT": {"artifact_uid": "art_1", "mime_type": "image/png", "description": "Failing test"},
        "FILE": {
            "artifact_uid": "art_2",
            "filename": "report.txt",
            "filepath": "out/report.txt",
            "mime_type": "text/plain",
        },
        "EXTERNAL_REFERENCE": {"reference_type": "linear_issue", "url": "https://linear.app/acme/issue/SHOP-1"},
    }.get(artifact_type, {"url": "https://example.com/artifact"})
    return {"artifact_type": artifact_type, "created_at": created, "data": data}


def sample_event(event_type: str, run: JSONDict | None) -> Event:
    is_artifact = event_type.startswith("artifact.")
    if not event_type.startswith(("run.", "artifact.")) or any(c in event_type for c in "*?["):
        raise ConfigError([f"--event: {event_type!r} is not an event type (e.g. run.failed, artifact.pull_request)"])
    state = _STATE_OF_EVENT.get(event_type, "INPROGRESS" if is_artifact or event_type == RUN_CREATED else "FAILED")
    run = run if run is not None else sample_run(state)
    artifact = None
    if is_artifact:
        kind = _ARTIFACT_OF_EVENT.get(event_type, event_type.removeprefix("artifact.").upper())
        artifact = next((a for a in run.get("artifacts") or [] if a.get("artifact_type") == kind), None)
        artifact = artifact or sample_artifact(kind)
    previous = None if is_artifact or event_type == RUN_CREATED else "INPROGRESS"
    return Event(
        id=event_id(str(run.get("run_id", "?")), "preview", event_type),
        type=event_type,
        run_id=str(run.get("run_id", "?")),
        created_at=rfc3339(datetime.now(UTC).replace(microsecond=0)),
        run=run,
        previous_state=previous,
        artifact=artifact,
    )


def preview(settings: Settings, event_type: str, run: JSONDict | None) -> str:
    event = sample_event(event_type, run)
    routes = matching_routes(event, settings.routes)
    built_in = _built_in_lines(event)
    if not routes and not built_in:
        return f"{event_type}: no route matches; nothing would be sent"
    lines = [f"{event_type} matches {len(routes)} route(s):"]
    lines += [f"  route {route.name} → {', '.join(route.to)}" for route in routes]
    lines += built_in
    seen: set[str] = set()
    for route in routes:
        for name in route.to:
            if name in seen:
                continue
            seen.add(name)
            lines += ["", *_target_preview(name, settings, event)]
    lines.append("\n(nothing was sent)")
    return "\n".join(lines)


def _built_in_lines(event: Event) -> list[str]:
    from bridge.notifiers.slack_places import THREAD_TARGET, started_thread

    thread = started_thread(event.run)
    if thread is None:
        return []
    where = f"thread {thread[1]} in {thread[0]}"
    return [f"  built-in {THREAD_TARGET} → the Slack {where} named by the run's metadata (needs SLACK_BOT_TOKEN)"]


def _target_preview(name: str, settings: Settings, event: Event) -> list[str]:
    target = settings.targets[name]
    if isinstance(target, WebhookTarget):
        signed = "signed (Standard Webhooks)" if target.secret else "unsigned"
        body = json.dumps(event.to_payload(), indent=2, ensure_ascii=False)
        return [f"target {name} (webhook, {signed}) would receive POST body:", body]
    if isinstance(target, ConsoleTarget):
        return [f"target {name} (console) would print:", describe(event)]
    if isinstance(target, SlackTarget):
        return [f"target {name} (slack, channel {target.channel}) would get:", *_slack_preview(event)]
    return [f"target {name}: no preview for this type"]


def _slack_preview(event: Event) -> list[str]:
    try:
        from bridge.notifiers.slack_messages import preview_lines
    except ImportError:
        return [describe(event)]
    return preview_lines(event)
