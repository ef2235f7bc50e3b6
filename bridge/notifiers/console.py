"""Console target: one readable line per event, for the demo and for debugging."""

from __future__ import annotations

import sys
from typing import TextIO

from bridge.events import Event
from bridge.notifiers.base import Outcome


def describe(event: Event) -> str:
    run = event.run
    title = str(run.get("title") or run.get("run_id"))
    line = f"{event.type:<28} {title!r} (run {event.run_id[:8]})"
    if event.previous_state:
        line += f" {event.previous_state} → {event.state}"
    elif event.type.startswith("run.") and event.type != "run.created":
        line += f" {event.state}"
    status = run.get("status_message") or {}
    if event.type in ("run.failed", "run.errored", "run.blocked") and status.get("message"):
        line += f": {status['message']}"
    if event.artifact:
        data = event.artifact.get("data") or {}
        label = data.get("url") or data.get("title") or data.get("filename") or data.get("description")
        if label:
            line += f" → {label}"
    return line


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
