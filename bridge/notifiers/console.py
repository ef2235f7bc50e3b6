"""Console target: one readable line per event (a block for a digest), for the demo and for debugging."""

from __future__ import annotations

import sys
from typing import TextIO

from bridge.digest import local_window
from bridge.events import (
    RUN_COST_EXCEEDED,
    RUN_STILL_BLOCKED,
    RUN_STUCK,
    Event,
    JSONDict,
    run_cost_usd,
)
from bridge.notifiers.base import Outcome
from bridge.schedule import quiet_for, span_text


def describe(event: Event) -> str:
    if event.digest is not None:
        return describe_digest(event.digest)
    run = event.fields
    title = str(run.get("title") or run.get("run_id"))
    line = f"{event.type:<28} {title!r} (run {event.run_id[:8]})"
    if event.previous_state:
        line += f" {event.previous_state} → {event.state}"
    elif event.type.startswith("run.") and event.type != "run.created":
        line += f" {event.state}"
    line += _time_note(event)
    status = run.get("status_message") or {}
    if event.type in ("run.failed", "run.errored", "run.blocked", RUN_STILL_BLOCKED) and status.get("message"):
        line += f": {status['message']}"
    if event.artifact:
        data = event.artifact.get("data") or {}
        label = data.get("url") or data.get("title") or data.get("filename") or data.get("description")
        if label:
            line += f" → {label}"
    return line


def _time_note(event: Event) -> str:
    quiet = quiet_for(event)
    if event.type == RUN_STILL_BLOCKED and quiet is not None:
        return f", still waiting for input after {span_text(quiet)}"
    if event.type == RUN_STUCK and quiet is not None:
        return f", no update for {span_text(quiet)}"
    if event.type == RUN_COST_EXCEEDED:
        return f", over the cost budget at ${run_cost_usd(event.fields):,.2f}"
    return ""


def describe_digest(digest: JSONDict) -> str:
    """A digest as one block: the headline, then counts by state and agent, then each failure."""
    start, end = local_window(digest)
    span = f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} {digest.get('timezone', 'UTC')}"
    lines = [f"{'digest':<28} {digest.get('name')!r}: {digest.get('runs', 0)} run(s), {span}, ~${_cost(digest)}"]
    lines.append("  by state: " + (_counts(digest.get("by_state")) or "no runs"))
    lines.append("  by agent: " + (_counts(digest.get("by_agent")) or "no runs"))
    for failure in digest.get("failed") or []:
        status = failure.get("status_message") or {}
        reason = f": {status['message']}" if status.get("message") else ""
        link = f" {failure['session_link']}" if failure.get("session_link") else ""
        lines.append(f"  failed: {failure.get('title')!r} (run {str(failure.get('run_id'))[:8]}){reason}{link}")
    hidden = int(digest.get("failed_total") or 0) - len(digest.get("failed") or [])
    if hidden > 0:
        lines.append(f"  … and {hidden} more failure(s)")
    return "\n".join(lines)


def _counts(counts: object) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items()) if isinstance(counts, dict) else ""


def _cost(digest: JSONDict) -> str:
    cost = digest.get("cost_usd")
    return f"{cost:,.2f}" if isinstance(cost, int | float) else "0.00"


class ConsoleNotifier:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, event: Event) -> Outcome:
        stream = self._stream or sys.stdout
        stream.write(describe(event) + "\n")
        stream.flush()
        return Outcome.done()

    async def close(self) -> None:
        """Nothing to release."""
