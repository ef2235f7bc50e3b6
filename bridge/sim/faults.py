"""Fault injection: the next N matching API requests misbehave on purpose.

A fault answers with an error status, with junk, slowly, or (``mutate``) with
a listing that is well-formed HTTP but hostile in its content: the kinds of
answer a real API, proxy or network can produce and a client must survive.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["MALFORMED_KINDS", "MUTATIONS", "Fault", "FaultQueue"]

# non_json: 200 text/html (a proxy error page); truncated: 200 application/json
# that does not parse; wrong_shape: 200 valid JSON missing required fields;
# cut: the genuine answer cut off half way (a connection dropped mid-body).
MALFORMED_KINDS = ("non_json", "truncated", "wrong_shape", "cut")

# Only for GET /agent/runs (see hostile.py): an artifact that is not an object, a runs
# entry that is not an object, an updated_at far in the future, a stale duplicate of a
# run before the real one, a page cursor that repeats.
MUTATIONS = ("artifact_not_object", "run_not_object", "future_updated_at", "duplicate_stale", "repeat_cursor")

LIST_PATH = "/agent/runs"

_ids = itertools.count(1)
NO_VALUE: Any = object()  # ``value`` not given, as opposed to given as None (a JSON null)


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
    hold: float = 0.0  # seconds the genuine answer is held back after the request took effect
    mutate: str | None = None
    run_id: str | None = None  # the run a mutation targets (all runs of the page when None)
    value: Any = None  # what a mutation puts in (the junk entry, the future timestamp)...
    value_given: bool = False  # ...when given at all: ``null`` is a junk entry like any other
    patch: dict[str, Any] | None = None  # duplicate_stale: how the stale copy differs
    rate: float = 1.0  # the share of matching requests it hits (seeded, so runs repeat)

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("count must be >= 1")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        if self.malformed is not None and self.malformed not in MALFORMED_KINDS:
            raise ValueError(f"malformed must be one of {MALFORMED_KINDS}")
        if self.mutate is not None and self.mutate not in MUTATIONS:
            raise ValueError(f"mutate must be one of {MUTATIONS}")
        effects = (self.status, self.malformed, self.mutate)
        if all(effect is None for effect in effects) and self.latency <= 0 and self.hold <= 0:
            raise ValueError("a fault needs a status, malformed, mutate, latency or hold")
        if self.latency < 0 or self.hold < 0:
            raise ValueError("latency and hold must be >= 0")
        if self.hold and self.status is not None:
            raise ValueError("hold delays the genuine answer: it takes no status")
        if not 0 < self.rate <= 1:
            raise ValueError("rate must be in (0, 1]")
        if self.method is not None:
            self.method = self.method.upper()
        if not self.fault_id:
            self.fault_id = next(_ids)

    @classmethod
    def build(
        cls,
        status: int | None = None,
        *,
        count: int = 1,
        retry_after: float | None = None,
        path: str | None = None,
        method: str | None = None,
        malformed: str | bool | None = None,
        latency: float = 0.0,
        mutate: str | None = None,
        run_id: str | None = None,
        value: Any = NO_VALUE,
        patch: dict[str, Any] | None = None,
        rate: float = 1.0,
        hold: float = 0.0,
    ) -> Fault:
        """A fault from Python arguments; ``malformed=True`` means ``non_json``."""
        kind = "non_json" if malformed is True else (malformed or None)
        given = value is not NO_VALUE
        return cls(
            status, count, retry_after, path, method, kind, latency, hold=hold,
            mutate=mutate, run_id=run_id, value=value if given else None, value_given=given, patch=patch, rate=rate,
        )  # fmt: skip

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Fault:
        malformed = body.get("malformed")
        if malformed is True:
            malformed = "non_json"
        elif malformed is False:
            malformed = None
        retry_after = body.get("retry_after")
        patch = body.get("patch")
        if patch is not None and not isinstance(patch, dict):
            raise ValueError("patch must be an object of RunItem fields")
        return cls(
            status=int(body["status"]) if body.get("status") is not None else None,
            count=int(body.get("count", 1)),
            retry_after=float(retry_after) if retry_after is not None else None,
            path=body.get("path"),
            method=body.get("method"),
            malformed=malformed,
            latency=float(body.get("latency") or 0.0),
            mutate=body.get("mutate"),
            run_id=body.get("run_id"),
            value=body.get("value"),
            value_given="value" in body,
            patch=patch,
            rate=float(body.get("rate", 1.0)),
            hold=float(body.get("hold") or 0.0),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def matches(self, method: str, path: str, api_path: str) -> bool:
        """``path`` is the full request path, ``api_path`` the same minus the base path."""
        if self.mutate is not None and (method.upper() != "GET" or api_path.rstrip("/") != LIST_PATH):
            return False  # a listing's content can only be mutated on a listing
        if self.method is not None and self.method != method.upper():
            return False
        if self.path is None:
            return True
        return path.startswith(self.path) or api_path.startswith(self.path)


class FaultQueue:
    """Faults in injection order; the first match is consumed per request."""

    def __init__(self, seed: int = 0) -> None:
        self._faults: list[Fault] = []
        self._random = random.Random(seed)

    def add(self, fault: Fault) -> Fault:
        self._faults.append(fault)
        return fault

    def take(self, method: str, path: str, api_path: str) -> Fault | None:
        for fault in self._faults:
            if not fault.matches(method, path, api_path):
                continue
            if fault.rate < 1 and self._random.random() >= fault.rate:
                continue
            fault.count -= 1
            if fault.count <= 0:
                self._faults.remove(fault)
            return fault
        return None

    def pending(self) -> list[Fault]:
        return list(self._faults)

    def clear(self) -> None:
        self._faults.clear()
