"""What the delivery fault tests check on what a receiver accepted: nothing lost, order per run kept."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bridge.diff import parse_time
from bridge.sim import Simulator

STATE_ORDER = {"run.created": 0, "run.queued": 1, "run.started": 2, "run.succeeded": 3}


def told(body: dict[str, Any]) -> tuple[str, str, str]:
    """What one webhook body tells: run, event type, and which artifact."""
    artifact = body.get("artifact") or {}
    return body["run"]["run_id"], body["type"], str((artifact.get("data") or {}).get("url", ""))


def missing(sim: Simulator, run_ids: list[str], accepted: list[dict[str, Any]], types: tuple[str, ...]) -> list[Any]:
    """Every state event of ``types`` and every artifact of the runs that was not accepted."""
    seen = {told(body) for body in accepted}
    expected = {(rid, kind, "") for rid in run_ids for kind in types}
    for rid in run_ids:
        for artifact in sim.get_run(rid).get("artifacts") or []:
            expected.add((rid, "artifact.pull_request", str(artifact["data"]["url"])))
    return sorted(expected - seen)


def out_of_order(accepted: list[dict[str, Any]]) -> list[str]:
    """Runs whose events arrived out of order: resends may repeat an event, never reorder them.

    Artifacts come after the state events of their observation, in ``created_at`` order.
    """
    by_run: dict[str, list[tuple[int, str]]] = {}
    for body in accepted:
        rid, kind, url = told(body)
        rank = STATE_ORDER.get(kind, len(STATE_ORDER))
        # By instant, not by text: the API trims trailing zeros (".869Z" is before ".869298Z").
        created = (body.get("artifact") or {}).get("created_at") if kind.startswith("artifact.") else None
        key = parse_time(created).isoformat(timespec="microseconds") if created else ""
        by_run.setdefault(rid, []).append((rank, f"{key}|{url}"))
    return [f"{rid}: {seq}" for rid, seq in by_run.items() if seq != sorted(seq)]


def duplicates(accepted: list[dict[str, Any]]) -> int:
    counts = Counter(body["id"] for body in accepted)
    return sum(n - 1 for n in counts.values())
