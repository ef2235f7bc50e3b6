"""Routing: which targets an event reaches."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.diff import diff_run
from bridge.events import Event
from bridge.routing import mismatch, pattern_problem, route_matches, targets_for
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


@pytest.mark.parametrize(
    "pattern",
    ["*", "run.*", "artifact.*", "run.failed", "artifact.video", "run.[fb]*", "run.still_blocked", "run.stuck"],
)
def test_valid_patterns(pattern: str) -> None:
    assert pattern_problem(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("run.faild", "not an event type"),
        ("Run.Failed", "not an event pattern"),
        ("run.[f", "unbalanced"),
        ("job.*", "matches no event"),
        ("digest", "digests are not routed"),
    ],
)
def test_invalid_patterns_are_explained(pattern: str, says: str) -> None:
    problem = pattern_problem(pattern)
    assert problem is not None and says in problem


def test_time_events_route_like_any_event() -> None:
    still_blocked = Event("e", "run.still_blocked", "run-1", NOW, make_run(state="BLOCKED"))
    assert route_matches(route(events=["run.*"], states=["blocked"]), still_blocked)
    assert route_matches(route(events=["run.still_blocked"]), still_blocked)
    assert not route_matches(route(events=["run.blocked"]), still_blocked)


@pytest.mark.parametrize(
    ("wanted", "matches"),
    [
        ({"team": "shop"}, True),
        ({"team": "SH*"}, True),  # values compare like every other matcher: case-insensitive globs
        ({"team": "shop", "ticket_id": "SHOP-*"}, True),
        ({"team": "shop", "ticket_id": "WEB-*"}, False),  # all must match
        ({"Team": "shop"}, False),  # keys are case-sensitive, as the API's
        ({"owner": "*"}, False),  # a key the run does not have never matches
    ],
)
def test_metadata_matcher_needs_every_key_to_match(wanted: dict[str, str], matches: bool) -> None:
    event = event_of(metadata={"team": "shop", "ticket_id": "SHOP-12"})
    assert route_matches(route(metadata=wanted), event) is matches


def test_a_run_without_metadata_matches_no_metadata_route() -> None:
    assert not route_matches(route(metadata={"team": "*"}), event_of())
    assert mismatch(route(metadata={"team": "*"}), event_of()) == "metadata.team: the run has no such key"


@pytest.mark.parametrize(("minimum", "matches"), [(0, True), (4.5, True), (4.51, False)])
def test_min_cost_usd_compares_the_sum_of_the_usd_costs(minimum: float, matches: bool) -> None:
    event = event_of(request_usage={"inference_cost_usd": 4.0, "compute_cost_usd": 0.5, "inference_cost": 700})
    assert route_matches(route(min_cost_usd=minimum), event) is matches
    assert route_matches(route(min_cost_usd=0.01), event_of()) is False  # no usage reported: $0


def test_mismatch_says_why_a_route_does_not_take_an_event() -> None:
    event = event_of("FAILED", source="API", metadata={"team": "shop"})
    assert mismatch(route(events=["run.succeeded", "artifact.*"]), event) == (
        "run.failed is not one of its events (run.succeeded, artifact.*)"
    )
    assert mismatch(route(sources=["SLACK"]), event) == "sources: the run has API, which matches none of SLACK"
    assert mismatch(route(names=["nightly-*"]), event) == "names: the run has nothing, which matches none of nightly-*"
    assert mismatch(route(metadata={"team": "web"}), event) == "metadata.team: 'shop' does not match 'web'"
    assert mismatch(route(min_cost_usd=2), event) == "min_cost_usd: the run has cost $0.00, less than $2.00"
    assert mismatch(route(metadata={"team": "shop"}), event) is None
