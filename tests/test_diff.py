"""The diff engine: what one observation of a run yields, given what was stored before."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.diff import RunSnapshot, artifact_key, diff_run, is_news, snapshot_of
from tests.conftest import make_run, pr_artifact

START = datetime(2026, 1, 1, tzinfo=UTC)
NOW = "2026-01-01T01:00:00Z"


def types(events: list[Any]) -> list[str]:
    return [e.type for e in events]


def test_first_sighting_of_a_new_run_announces_creation_then_its_state() -> None:
    events = diff_run(None, make_run(state="QUEUED"), START, NOW)
    assert types(events) == ["run.created", "run.queued"]
    assert all(e.previous_state is None for e in events)


def test_run_created_before_the_start_point_gets_state_but_never_created() -> None:
    run = make_run(state="INPROGRESS", created_at="2025-12-31T23:00:00Z")
    assert types(diff_run(None, run, START, NOW)) == ["run.started"]


def test_run_last_updated_before_the_start_point_is_ignored() -> None:
    run = make_run(created_at="2025-12-31T22:00:00Z", updated_at="2025-12-31T23:00:00Z")
    assert diff_run(None, run, START, NOW) == []
    assert not is_news(None, run, START)


def test_state_change_names_new_state_and_previous_state() -> None:
    stored = snapshot_of(make_run(state="INPROGRESS", updated_at="2026-01-01T00:00:10Z"))
    events = diff_run(stored, make_run(state="FAILED", updated_at="2026-01-01T00:00:20Z"), START, NOW)
    assert types(events) == ["run.failed"]
    assert events[0].previous_state == "INPROGRESS"


def test_several_changes_between_polls_yield_only_last_seen_to_current() -> None:
    stored = snapshot_of(make_run(state="QUEUED"))
    events = diff_run(stored, make_run(state="SUCCEEDED", updated_at="2026-01-01T00:05:00Z"), START, NOW)
    assert [(e.type, e.previous_state) for e in events] == [("run.succeeded", "QUEUED")]


def test_unknown_state_and_artifact_type_pass_through() -> None:
    run = make_run(
        state="HIBERNATING",
        artifacts=[{"artifact_type": "VIDEO", "created_at": "2026-01-01T00:00:09Z", "data": {"url": "https://v/1"}}],
    )
    assert types(diff_run(None, run, START, NOW)) == ["run.created", "run.state_changed", "artifact.video"]


def test_re_reading_an_unchanged_run_yields_nothing() -> None:
    run = make_run(state="INPROGRESS", artifacts=[pr_artifact()])
    assert diff_run(snapshot_of(run), run, START, NOW) == []


def test_artifacts_are_identified_by_what_they_are_not_by_position() -> None:
    first = pr_artifact("https://github.com/a/b/pull/1", "2026-01-01T00:00:08Z")
    second = pr_artifact("https://github.com/a/b/pull/2", "2026-01-01T00:00:09Z")
    stored = snapshot_of(make_run(state="INPROGRESS", artifacts=[first]))
    reordered = make_run(state="INPROGRESS", updated_at="2026-01-01T00:01:00Z", artifacts=[second, first])
    events = diff_run(stored, reordered, START, NOW)
    assert types(events) == ["artifact.pull_request"]
    assert events[0].artifact == second


def test_order_within_one_observation_is_created_state_then_artifacts_by_created_at() -> None:
    late = pr_artifact("https://github.com/a/b/pull/9", "2026-01-01T00:00:09Z")
    plan = {"artifact_type": "PLAN", "created_at": "2026-01-01T00:00:07Z", "data": {"document_uid": "d1"}}
    events = diff_run(None, make_run(state="INPROGRESS", artifacts=[late, plan]), START, NOW)
    assert types(events) == ["run.created", "run.started", "artifact.plan", "artifact.pull_request"]
    assert all(e.previous_state is None for e in events)


def test_plan_is_identified_by_document_uid_and_file_by_artifact_uid() -> None:
    plan = {"artifact_type": "PLAN", "created_at": "2026-01-01T00:00:07Z", "data": {"document_uid": "d1"}}
    file = {"artifact_type": "FILE", "created_at": "x", "data": {"artifact_uid": "a1", "filename": "f"}}
    assert artifact_key(plan) == "PLAN:document_uid:d1"
    assert artifact_key(file) == "FILE:artifact_uid:a1"


def test_the_same_change_always_gets_the_same_id() -> None:
    stored = snapshot_of(make_run(state="INPROGRESS"))
    changed = make_run(state="FAILED", updated_at="2026-01-01T00:00:20Z")
    once = diff_run(stored, changed, START, NOW)
    again = diff_run(stored, changed, START, "2026-01-02T00:00:00Z")
    assert [e.id for e in once] == [e.id for e in again]


def test_a_different_change_to_the_same_state_gets_a_different_id() -> None:
    failed_once = diff_run(
        snapshot_of(make_run(state="INPROGRESS")),
        make_run(state="FAILED", updated_at="2026-01-01T00:01:00Z"),
        START,
        NOW,
    )
    failed_again = diff_run(
        snapshot_of(make_run(state="INPROGRESS")),
        make_run(state="FAILED", updated_at="2026-01-01T00:02:00Z"),
        START,
        NOW,
    )
    assert failed_once[0].id != failed_again[0].id


def test_an_older_observation_than_the_snapshot_is_not_news() -> None:
    stored = snapshot_of(make_run(state="FAILED", updated_at="2026-01-01T00:05:00Z"))
    assert diff_run(stored, make_run(state="INPROGRESS", updated_at="2026-01-01T00:04:00Z"), START, NOW) == []


# --- property: any sequence of observations, split into any pages, re-read by any sweeps ---

STATES = ["QUEUED", "PENDING", "CLAIMED", "INPROGRESS", "BLOCKED", "SUCCEEDED", "FAILED", "ERROR", "CANCELLED", "NEW"]


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Successive versions of one run: each a later updated_at, maybe a new state, maybe new artifacts."""
    versions: list[dict[str, Any]] = []
    artifacts: list[dict[str, Any]] = []
    for step in range(draw(st.integers(1, 8))):
        if draw(st.booleans()):
            n = len(artifacts)
            artifacts = [*artifacts, pr_artifact(f"https://github.com/a/b/pull/{n}", f"2026-01-01T00:00:{n:02d}Z")]
        state = draw(st.sampled_from(STATES))
        versions.append(
            make_run(state=state, updated_at=f"2026-01-01T00:{step + 1:02d}:00Z", artifacts=list(artifacts))
        )
    return versions


def expected_changes(versions: list[dict[str, Any]], seen: list[int]) -> list[str]:
    """What the bridge must report when it observes exactly the versions at indexes ``seen``."""
    changes: list[str] = ["run.created"]
    last_state: str | None = None
    known: set[str] = set()
    for index in seen:
        version = versions[index]
        if version["state"] != last_state:
            changes.append(f"state:{version['state']}")
            last_state = version["state"]
        for artifact in version["artifacts"]:
            key = artifact_key(artifact)
            if key not in known:
                known.add(key)
                changes.append(f"artifact:{key}")
    return changes


@settings(max_examples=300, deadline=None)
@given(versions=histories(), data=st.data())
def test_each_change_yields_exactly_one_event_however_it_is_observed(
    versions: list[dict[str, Any]], data: st.DataObject
) -> None:
    # The poller sees a rising subsequence of versions (it may miss intermediate ones),
    # and any observation may be re-read any number of times (sweeps, page ties, crashes).
    seen = sorted(data.draw(st.sets(st.integers(0, len(versions) - 1), min_size=1)))
    reads: list[int] = []
    for index in seen:
        reads += [index] * data.draw(st.integers(1, 3))
        if reads and data.draw(st.booleans()):
            reads.append(data.draw(st.sampled_from(reads)))  # a stale re-read from a sweep
    stored: RunSnapshot | None = None
    events = []
    for index in reads:
        run = versions[index]
        if is_news(stored, run, START):
            events += diff_run(stored, run, START, NOW)
            stored = snapshot_of(run)
    described = []
    for event in events:
        if event.type == "run.created":
            described.append("run.created")
        elif event.is_artifact:
            assert event.artifact is not None
            described.append(f"artifact:{artifact_key(event.artifact)}")
        else:
            described.append(f"state:{event.run['state']}")
    assert described == expected_changes(versions, seen)
    assert len({e.id for e in events}) == len(events)
