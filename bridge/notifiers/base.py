"""The one small protocol every target type implements.

A notifier says *how* an event is told at one target and whether a failure
is worth retrying; *when* to retry lives once, in ``bridge.delivery``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from bridge.events import Event

OutcomeStatus = Literal["done", "retry", "permanent"]


@dataclass(frozen=True)
class Outcome:
    status: OutcomeStatus
    detail: str = ""
    retry_after: float | None = None

    @classmethod
    def done(cls, detail: str = "") -> Outcome:
        return cls("done", detail)

    @classmethod
    def retry(cls, detail: str, retry_after: float | None = None) -> Outcome:
        return cls("retry", detail, retry_after)

    @classmethod
    def permanent(cls, detail: str) -> Outcome:
        return cls("permanent", detail)


class Notifier(Protocol):
    async def send(self, event: Event) -> Outcome:
        """Tell one event at this notifier's target. Never raises for target errors."""

    async def close(self) -> None:
        """Release connections; called once at shutdown."""
