"""``oz-bridge routes test``: where an event would go and what each target would get."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from bridge.digest import DigestTally, DigestWindow, digest_event
from bridge.events import (
    ARTIFACT_EVENT_TYPES,
    DIGEST,
    RUN_COST_EXCEEDED,
    RUN_CREATED,
    RUN_STILL_BLOCKED,
    RUN_STUCK,
    STATE_EVENT_TYPES,
    TIME_EVENT_TYPES,
    Event,
    JSONDict,
    event_id,
    rfc3339,
)
from bridge.notifiers.console import describe
from bridge.routing import mismatch
from bridge.settings import ConfigError, ConsoleTarget, Settings, SlackTarget, WebhookTarget

_STATE_OF_EVENT = {kind: state for state, kind in STATE_EVENT_TYPES.items()}
_STATE_OF_EVENT |= {RUN_STILL_BLOCKED: "BLOCKED", RUN_STUCK: "INPROGRESS", RUN_COST_EXCEEDED: "INPROGRESS"}
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
        "agent_config": {"name": "checkout-fixer"},
        "metadata": {"team": "shop"},
        "request_usage": {"inference_cost_usd": 0.38, "compute_cost_usd": 0.04},
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
    """An event of ``event_type`` for ``run`` (or a sample run), as the bridge would make it."""
    is_artifact = event_type.startswith("artifact.")
    if not event_type.startswith(("run.", "artifact.")) or any(c in event_type for c in "*?["):
        raise ConfigError([f"--event: {event_type!r} is not an event type (e.g. run.failed, artifact.pull_request)"])
    state = _STATE_OF_EVENT.get(event_type, "INPROGRESS" if is_artifact or event_type == RUN_CREATED else "FAILED")
    if run is None:
        run = sample_run(state)
        if event_type in TIME_EVENT_TYPES:  # time has passed since the run last changed
            run["updated_at"] = rfc3339(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
    artifact = None
    if is_artifact:
        kind = _ARTIFACT_OF_EVENT.get(event_type, event_type.removeprefix("artifact.").upper())
        artifact = next((a for a in run.get("artifacts") or [] if a.get("artifact_type") == kind), None)
        artifact = artifact or sample_artifact(kind)
    unchanged = is_artifact or event_type in (RUN_CREATED, *TIME_EVENT_TYPES)
    return Event(
        id=event_id(str(run.get("run_id", "?")), "preview", event_type),
        type=event_type,
        run_id=str(run.get("run_id", "?")),
        created_at=rfc3339(datetime.now(UTC).replace(microsecond=0)),
        run=run,
        previous_state=None if unchanged else "INPROGRESS",
        artifact=artifact,
    )


def preview(settings: Settings, event_type: str, run: JSONDict | None) -> str:
    if event_type == DIGEST:
        return preview_digests(settings)
    event = sample_event(event_type, run)
    verdicts = [(route, mismatch(route, event)) for route in settings.routes]
    routes = [route for route, reason in verdicts if reason is None]
    built_in = _built_in_lines(event)
    if routes or built_in:
        lines = [f"{event_type} matches {len(routes)} route(s):"]
        lines += [f"  route {route.name} → {', '.join(route.to)}" for route in routes]
        lines += built_in
    else:
        lines = [f"{event_type}: no route matches; nothing would be sent"]
    skipped = [f"  route {route.name}: {reason}" for route, reason in verdicts if reason is not None]
    lines += ["not taken:", *skipped] if skipped else []
    seen: set[str] = set()
    for route in routes:
        for name in route.to:
            if name in seen:
                continue
            seen.add(name)
            lines += ["", *_target_preview(name, settings, event)]
    if routes:
        lines.append("\n(nothing was sent)")
    return "\n".join(lines)


def preview_digests(settings: Settings) -> str:
    """Digests go to their own targets, not through routes: show each with a sample body."""
    if not settings.digests:
        return "digest: no digests are configured (see digests: in the config)"
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    lines: list[str] = []
    for digest in settings.digests:
        scheduled = digest.schedule().next_after(now) or now
        tally = DigestTally(DigestWindow.ending(digest.name, digest.timezone, scheduled, digest.window))
        for state in ("SUCCEEDED", "SUCCEEDED", "FAILED"):
            sample = sample_run(state) | {"created_at": rfc3339(scheduled), "updated_at": rfc3339(scheduled)}
            tally.add(sample, scheduled)
        event = digest_event(tally.summary(), rfc3339(scheduled))
        lines.append(f"digest {digest.name} ({digest.cron}, {digest.timezone}), next at {rfc3339(scheduled)}")
        lines.append(f"  → {', '.join(digest.to)}")
        for name in dict.fromkeys(digest.to):
            if name in settings.targets:
                lines += ["", *_target_preview(name, settings, event)]
        lines.append("")
    lines.append("(nothing was sent; the sample counts three runs)")
    return "\n".join(lines)


def _built_in_lines(event: Event) -> list[str]:
    from bridge.notifiers.slack_places import THREAD_TARGET, started_thread

    thread = started_thread(event.fields)
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
        from bridge.notifiers import slack_digest, slack_messages
    except ImportError:
        return [describe(event)]
    if event.digest is not None:
        return slack_digest.preview_lines(event.digest)
    return slack_messages.preview_lines(event)
