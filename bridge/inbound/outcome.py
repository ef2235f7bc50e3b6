"""What acting on one inbox row came to, and the shape of the steps that act and tell.

The outcome is stored before Slack is told, so a retry of the telling replays
the words without repeating the effect on the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bridge.store.inbox import InboxRow

JSONDict = dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    result: str  # accepted, refused, denied, ignored, gave_up, cancelled, files …
    text: str = ""  # the words to tell, when there are any
    run_id: str | None = None

    def to_json(self) -> JSONDict:
        return {"result": self.result, "text": self.text, "run_id": self.run_id}

    @classmethod
    def from_json(cls, data: JSONDict) -> Outcome:
        run_id = data.get("run_id")
        return cls(str(data.get("result", "")), str(data.get("text") or ""), str(run_id) if run_id else None)

    @classmethod
    def ignored(cls, why: str) -> Outcome:
        return cls("ignored", why)


class InboxHandler(Protocol):
    async def act(self, row: InboxRow) -> Outcome:
        """Do the row's effect on Oz once; raise ``Transient`` to be called again later."""

    async def tell(self, row: InboxRow, outcome: Outcome) -> None:
        """Tell the person in Slack; raise ``Transient`` to be called again later."""

    def give_up(self, row: InboxRow, reason: str) -> Outcome:
        """The outcome to tell when retries ran out."""
