"""What the bridge uses of a page's runs: every entry checked, the unusable left out by reason, newest copy kept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bridge import records
from bridge.records import LeftOut, read_page
from tests.conftest import make_run, pr_artifact

HORIZON = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)


def reasons(left_out: list[LeftOut]) -> list[str]:
    return [item.reason for item in left_out]


def test_a_usable_run_is_kept_exactly_as_sent() -> None:
    run = make_run("r1", some_future_field={"nested": [1, 2]}, artifacts=[pr_artifact()])
    page = read_page([run], HORIZON)
    assert page.runs == [run] and page.runs[0] is run  # no copy when nothing is left out
    assert page.left_out == []


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (42, records.RUN_NOT_OBJECT),
        ("run", records.RUN_NOT_OBJECT),
        (None, records.RUN_NOT_OBJECT),
        ([make_run("r1")], records.RUN_NOT_OBJECT),
        ({k: v for k, v in make_run("x").items() if k != "run_id"}, records.INVALID_RUN_ID),
        (make_run(12), records.INVALID_RUN_ID),  # type: ignore[arg-type]
        (make_run("x" * 129), records.INVALID_RUN_ID),
        (make_run("nul\x00id"), records.INVALID_RUN_ID),
        (make_run("r", state=None), records.INVALID_STATE),  # type: ignore[arg-type]
        (make_run("r", state=""), records.INVALID_STATE),
        (make_run("r", state={"name": "FAILED"}), records.INVALID_STATE),  # type: ignore[arg-type]
        (make_run("r", updated_at="yesterday-ish"), records.INVALID_UPDATED_AT),
        (make_run("r", updated_at=1767225600), records.INVALID_UPDATED_AT),  # type: ignore[arg-type]
        (make_run("r", created_at=None), records.INVALID_CREATED_AT),
        (make_run("r", updated_at="2099-01-01T00:00:00Z"), records.UPDATED_AT_IN_FUTURE),
    ],
)
def test_an_entry_the_diff_cannot_use_is_left_out_with_its_reason(entry: Any, reason: str) -> None:
    good = make_run("good")
    page = read_page([entry, good], HORIZON)
    assert page.runs == [good]
    assert reasons(page.left_out) == [reason]
    assert page.left_out[0].detail  # says what is wrong, for the log line


def test_the_left_out_record_names_its_run_when_it_has_one() -> None:
    page = read_page([make_run("r9", state=None)], HORIZON)  # type: ignore[arg-type]
    assert page.left_out[0].run_id == "r9"
    assert read_page([42], HORIZON).left_out[0].run_id is None


@pytest.mark.parametrize(
    ("junk", "reason"),
    [
        (None, records.ARTIFACT_NOT_OBJECT),
        ("a string", records.ARTIFACT_NOT_OBJECT),
        ([1], records.ARTIFACT_NOT_OBJECT),
        ({"data": {}}, records.INVALID_ARTIFACT_TYPE),
        ({"artifact_type": 3}, records.INVALID_ARTIFACT_TYPE),
    ],
)
def test_an_unusable_artifact_is_dropped_and_the_run_kept(junk: Any, reason: str) -> None:
    artifact = pr_artifact()
    run = make_run("r1", artifacts=[junk, artifact])
    page = read_page([run], HORIZON)
    assert page.runs == [{**run, "artifacts": [artifact]}]
    assert reasons(page.left_out) == [reason] and page.left_out[0].run_id == "r1"
    assert run["artifacts"] == [junk, artifact]  # the answer itself is not modified


def test_artifacts_that_are_not_a_list_leave_the_run_without_artifacts() -> None:
    page = read_page([make_run("r1", artifacts={"0": pr_artifact()})], HORIZON)
    assert page.runs[0]["artifacts"] == []
    assert reasons(page.left_out) == [records.ARTIFACTS_NOT_LIST]


@pytest.mark.parametrize("order", ["stale-first", "stale-last"])
def test_the_newest_copy_of_a_run_in_a_page_wins_wherever_it_stands(order: str) -> None:
    stale = make_run("r1", state="INPROGRESS", updated_at="2026-01-01T00:00:10Z")
    newest = make_run("r1", state="SUCCEEDED", updated_at="2026-01-01T00:00:20Z")
    other = make_run("r2")
    entries = [stale, other, newest] if order == "stale-first" else [newest, other, stale]
    page = read_page(entries, HORIZON)
    assert [r["state"] for r in page.runs if r["run_id"] == "r1"] == ["SUCCEEDED"]
    assert len(page.runs) == 2 and reasons(page.left_out) == [records.DUPLICATE_IN_PAGE]


def test_of_two_copies_with_the_same_updated_at_the_later_in_the_page_wins() -> None:
    first = make_run("r1", state="INPROGRESS")
    second = make_run("r1", state="SUCCEEDED")
    assert [r["state"] for r in read_page([first, second], HORIZON).runs] == ["SUCCEEDED"]


def test_a_run_updated_just_at_the_horizon_is_usable() -> None:
    assert read_page([make_run("r1", updated_at="2026-01-01T00:01:00Z")], HORIZON).runs


def test_page_order_is_kept_for_the_runs_that_remain() -> None:
    runs = [make_run(f"r{i}", updated_at=f"2026-01-01T00:00:{10 + i:02d}Z") for i in range(5)]
    page = read_page([runs[0], 7, runs[1], runs[2], runs[1], runs[3], runs[4]], HORIZON)
    assert [r["run_id"] for r in page.runs] == ["r0", "r2", "r1", "r3", "r4"]
