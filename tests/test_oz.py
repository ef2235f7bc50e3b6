"""Reading runs from the API's answers: what is diffable, and what gets left out."""

from __future__ import annotations

from bridge.oz import MalformedRun, checked_run, readable_runs
from tests.conftest import make_run


def test_a_malformed_run_is_left_out_and_reported_the_rest_kept() -> None:
    good = make_run("good")
    broken = {**make_run("broken"), "updated_at": "yesterday-ish"}
    nameless = {k: v for k, v in make_run("x").items() if k != "run_id"}
    reported: list[MalformedRun] = []
    assert readable_runs([good, broken, nameless], reported.append) == [good]
    assert [str(p) for p in reported] == [
        "run 'broken': Invalid isoformat string: 'yesterday-ish'",
        "run None has no valid run_id",
    ]


def test_a_run_keeps_every_field_the_api_sent() -> None:
    run = {**make_run("r"), "some_future_field": {"nested": [1, 2]}}
    assert checked_run(run) == run
