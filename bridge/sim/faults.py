"""Fault injection: the next N matching API requests misbehave on purpose."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["MALFORMED_KINDS", "Fault", "FaultQueue"]

# non_json: 200 text/html (a proxy error page); truncated: 200 application/json
# that does not parse; wrong_shape: 200 valid JSON missing required fields.
MALFORMED_KINDS = ("non_json", "truncated", "wrong_shape")

_ids = itertools.count(1)


@dataclass
class Fault:
    status: int | None = None
    count: int = 1
    retry_after: float | None = None
    path: str | None = None
    method: str | None = None
    malformed: str | None = None
    latency: float = 0.0
    fault_id: int = 0

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("count must be >= 1")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        if self.malformed is not None and self.malformed not in MALFORMED_KINDS:
            raise ValueError(f"malformed must be one of {MALFORMED_KINDS}")
        if self.status is None and self.malformed is None and self.latency <= 0:
            raise ValueError("a fault needs a status, malformed, or latency")
        if self.latency < 0:
            raise ValueError("latency must be >= 0")
        if self.method is not None:
            self.method = self.method.upper()
        if not self.fault_id:
            self.fault_id = next(_ids)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Fault:
        malformed = body.get("malformed")
        if malformed is True:
            malformed = "non_json"
        elif malformed is False:
            malformed = None
        retry_after = body.get("retry_after")
        return cls(
            status=int(body["status"]) if body.get("status") is not None else None,
            count=int(body.get("count", 1)),
            retry_after=float(retry_after) if retry_after is not None else None,
            path=body.get("path"),
            method=body.get("method"),
            malformed=malformed,
            latency=float(body.get("latency") or 0.0),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def matches(self, method: str, path: str, api_path: str) -> bool:
        """``path`` is the full request path, ``api_path`` the same minus the base path."""
        if self.method is not None and self.method != method.upper():
            return False
        if self.path is None:
            return True
        return path.startswith(self.path) or api_path.startswith(self.path)


class FaultQueue:
    """Faults in injection order; the first match is consumed per request."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        self._faults.append(fault)
        return fault

    def take(self, method: str, path: str, api_path: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, path, api_path):
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def pending(self) -> list[Fault]:
        return list(self._faults)

    def clear(self) -> None:
        self._faults.clear()
