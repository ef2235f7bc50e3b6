"""Pure digest logic: which scheduled time is due, which runs are in the window, what the summary says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.cron import CronSchedule
from bridge.diff import parse_time
from bridge.digest import MAX_FAILED, DigestTally, DigestWindow, digest_event, due_time, first_baseline
from bridge.events import Event, event_id
from tests.conftest import make_run

NINE = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)  # a Tuesday
DAY = timedelta(days=1)
DAILY = CronSchedule.parse("0 9 * * *")


def test_the_latest_missed_time_is_due_never_the_ones_before_it() -> None:
    assert due_time(DAILY, NINE - DAY, NINE - timedelta(seconds=1)) is None
    assert due_time(DAILY, NINE - DAY, NINE) == NINE
    assert due_time(DAILY, NINE - 3 * DAY, NINE + timedelta(hours=5)) == NINE  # down for three days: one make-up
    assert due_time(DAILY, NINE, NINE + timedelta(hours=5)) is None


def test_a_digest_seen_for_the_first_time_has_missed_nothing() -> None:
    baseline = first_baseline(DAILY, NINE + timedelta(hours=2))
    assert baseline == NINE
    assert due_time(DAILY, baseline, NINE + timedelta(hours=3)) is None
    assert due_time(DAILY, baseline, NINE + DAY) == NINE + DAY


def run(run_id: str, state: str, created: datetime, updated: datetime, **extra: Any) -> tuple[dict[str, Any], datetime]:
    stamp = {"created_at": created.isoformat(), "updated_at": updated.isoformat()}
    return make_run(run_id, state, updated_at=stamp["updated_at"], created_at=stamp["created_at"], **extra), updated


def tally_of(*runs: tuple[dict[str, Any], datetime]) -> dict[str, Any]:
    tally = DigestTally(DigestWindow.ending("daily", "Europe/Paris", NINE, 24 * 3600))
    for item, updated in runs:
        tally.add(item, updated)
    return tally.summary()


def test_runs_in_the_window_are_those_alive_in_it_and_updated_since_it_began() -> None:
    hour = timedelta(hours=1)
    summary = tally_of(
        run("inside", "SUCCEEDED", NINE - 5 * hour, NINE - 4 * hour),
        run("older-but-active", "INPROGRESS", NINE - 3 * DAY, NINE - 2 * hour),
        run("quiet-all-window", "BLOCKED", NINE - 3 * DAY, NINE - DAY - hour),
        run("created-after-the-end", "QUEUED", NINE + hour, NINE + hour),
        run("ended-after-the-end", "FAILED", NINE - 2 * hour, NINE + hour),
    )
    assert summary["runs"] == 3
    assert summary["by_state"] == {"FAILED": 1, "INPROGRESS": 1, "SUCCEEDED": 1}
    assert summary["failed"] == [] and summary["failed_total"] == 0  # it ended after the window
    assert (summary["window_start"], summary["window_end"]) == ("2026-01-05T09:00:00Z", "2026-01-06T09:00:00Z")
    assert summary["timezone"] == "Europe/Paris"


def test_failures_carry_links_and_reasons_and_costs_and_agents_add_up() -> None:
    hour = timedelta(hours=1)
    status = {"message": "Tests failed", "error_code": "internal_error"}
    summary = tally_of(
        run(
            "f1",
            "FAILED",
            NINE - 5 * hour,
            NINE - hour,
            session_link="https://app.warp.dev/session/f1",
            status_message=status,
            request_usage={"inference_cost_usd": 1.25, "compute_cost_usd": 0.5, "inference_cost": 99},
            agent_config={"name": "fixer"},
        ),
        run("e1", "ERROR", NINE - 5 * hour, NINE - hour, agent_config={"name": "fixer"}),
        run("s1", "SUCCEEDED", NINE - 5 * hour, NINE - hour, request_usage={"platform_cost_usd": 0.25}),
    )
    assert summary["failed"] == [
        {
            "run_id": "f1",
            "title": "Title of f1",
            "session_link": "https://app.warp.dev/session/f1",
            "status_message": status,
        },
        {"run_id": "e1", "title": "Title of e1", "session_link": None, "status_message": None},
    ]
    assert summary["cost_usd"] == 2.0
    assert summary["by_agent"] == {"fixer": 2, "(none)": 1}


def test_a_long_list_of_failures_is_cut_but_counted() -> None:
    many = [run(f"f{n}", "FAILED", NINE - DAY / 2, NINE - timedelta(minutes=n)) for n in range(MAX_FAILED + 7)]
    summary = tally_of(*many)
    assert len(summary["failed"]) == MAX_FAILED and summary["failed_total"] == MAX_FAILED + 7
    assert summary["by_state"] == {"FAILED": MAX_FAILED + 7}


def test_the_digest_event_has_no_run_and_an_id_per_scheduled_time() -> None:
    event = digest_event(tally_of(), "2026-01-06T09:00:03Z")
    payload = event.to_payload()
    assert payload["type"] == "digest" and payload["run"] is None and payload["digest"]["runs"] == 0
    assert event.id == event_id("digest:daily", "digest", "2026-01-06T09:00:00Z")
    assert event.run_id == "digest:daily"
    assert Event.from_payload(payload) == event
    assert parse_time(payload["digest"]["window_end"]) == NINE
