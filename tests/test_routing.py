"""Routing: which targets an event reaches."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.diff import diff_run
from bridge.events import Event
from bridge.routing import pattern_problem, route_matches, targets_for
from bridge.settings import RouteSettings
from tests.conftest import make_run, pr_artifact
from tests.test_diff import NOW, START


def event_of(state: str = "FAILED", **run: Any) -> Event:
    return diff_run(None, make_run(state=state, created_at="2025-01-01T00:00:00Z", **run), START, NOW)[0]


def route(**fields: Any) -> RouteSettings:
    return RouteSettings.model_validate({"name": "r", "to": ["t"], "events": ["*"], **fields})


def test_event_goes_to_the_union_of_matching_routes_once_per_target() -> None:
    routes = [
        route(name="failures", events=["run.failed", "run.errored"], to=["alerts", "audit"]),
        route(name="everything", events=["*"], to=["audit"]),
        route(name="artifacts", events=["artifact.*"], to=["prs"]),
    ]
    assert targets_for(event_of("FAILED"), routes) == ["alerts", "audit"]
    assert targets_for(event_of("SUCCEEDED"), routes) == ["audit"]


@pytest.mark.parametrize(
    ("fields", "matches"),
    [
        ({"sources": ["API"]}, True),
        ({"sources": ["SLACK"]}, False),
        ({"states": ["failed"]}, True),
        ({"creators": ["ada@example.com"]}, True),
        ({"creators": ["*@other.com"]}, False),
        ({"names": ["nightly-*"]}, True),
        ({"environments": ["env1"]}, True),
        ({"environments": ["env2"]}, False),
        ({"skills": ["acme/*"]}, True),
        ({"artifact_types": ["PULL_REQUEST"]}, False),
    ],
)
def test_route_matchers_narrow_what_a_route_takes(fields: dict[str, Any], matches: bool) -> None:
    event = event_of(
        "FAILED",
        source="API",
        creator={"email": "ada@example.com", "uid": "u1"},
        agent_config={"name": "nightly-fixer", "environment_id": "env1", "skill_spec": "acme/repo:SKILL.md"},
    )
    assert route_matches(route(**fields), event) is matches


def test_artifact_types_matcher_selects_artifact_events() -> None:
    run = make_run(state="INPROGRESS", created_at="2025-01-01T00:00:00Z", artifacts=[pr_artifact()])
    state_event, pr_event = diff_run(None, run, START, NOW)
    only_prs = route(events=["artifact.*"], artifact_types=["PULL_REQUEST"])
    assert route_matches(only_prs, pr_event)
    assert not route_matches(only_prs, state_event)


@pytest.mark.parametrize("pattern", ["*", "run.*", "artifact.*", "run.failed", "artifact.video", "run.[fb]*"])
def test_valid_patterns(pattern: str) -> None:
    assert pattern_problem(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("run.faild", "not an event type"),
        ("Run.Failed", "not an event pattern"),
        ("run.[f", "unbalanced"),
        ("job.*", "matches no event"),
    ],
)
def test_invalid_patterns_are_explained(pattern: str, says: str) -> None:
    problem = pattern_problem(pattern)
    assert problem is not None and says in problem
