"""What the simulator observed, kept so tests can assert on client behaviour."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CancelRecord", "FollowupRecord", "RequestRecord"]


@dataclass(frozen=True)
class FollowupRecord:
    """An accepted follow-up (rejected ones only show up in the request log)."""

    run_id: str
    message: str | None  # None: sent without a message, which the API allows
    mode: str
    at: str
    previous_state: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CancelRecord:
    """Every cancel attempt with its HTTP outcome, accepted or refused."""

    run_id: str
    at: str
    previous_state: str | None
    status: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RequestRecord:
    """One API request as received; ``query`` keeps repeated keys as lists."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    at: str
    retry_count: str | None = None
    body: Any = None
    fault_id: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
