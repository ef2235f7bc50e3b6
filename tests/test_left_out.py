"""Records left out: every one counted by reason, each (reason, run) logged once per window."""

from __future__ import annotations

import structlog

from bridge.left_out import LeftOutReport
from bridge.metrics import Metrics
from bridge.records import LeftOut


def test_each_record_is_counted_and_repeats_are_logged_once_per_window() -> None:
    metrics, now = Metrics(), [0.0]
    report = LeftOutReport(metrics, window=600, clock=lambda: now[0])
    future = LeftOut("updated_at_in_future", "r1", "updated_at 2099-01-01T00:00:00Z is after the API's own time")
    with structlog.testing.capture_logs() as logs:
        for _ in range(5):
            report([future])
            now[0] += 60
        now[0] += 600
        report([future, LeftOut("run_not_object", None, "a int where a run object belongs")])
    assert metrics.registry.get_sample_value("oz_bridge_malformed_runs_total", {"reason": "updated_at_in_future"}) == 6
    lines = [(line["run_id"], line["reason"], line["unlogged_repeats"]) for line in logs]
    assert lines == [("r1", "updated_at_in_future", 0), ("r1", "updated_at_in_future", 4), (None, "run_not_object", 0)]
    assert all(line["log_level"] == "warning" and line["problem"] for line in logs)


def test_memory_of_logged_records_is_bounded() -> None:
    report = LeftOutReport(Metrics(), remembered=3, clock=lambda: 0.0)
    with structlog.testing.capture_logs() as logs:
        report(LeftOut("run_not_object", f"r{i}", "x") for i in range(10))
        report([LeftOut("run_not_object", "r0", "x")])  # forgotten, so logged again
    assert len(logs) == 11
