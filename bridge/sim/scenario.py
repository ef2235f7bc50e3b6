"""Scripted scenarios: timed steps that drive a Simulator like a real fleet would.

Steps refer to runs by a local ``key`` because run ids are only known once
the run is created.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .state import Simulator

__all__ = [
    "DEMO_EXPECTED",
    "DEMO_SCENARIO",
    "SCENARIOS",
    "AddArtifact",
    "AwaitFollowup",
    "Cancel",
    "CreateRun",
    "Followup",
    "Scenario",
    "SetAttachments",
    "SetState",
    "Step",
    "describe",
    "play",
    "scenario_duration",
]


@dataclass(frozen=True, kw_only=True)
class Step:
    key: str
    delay: float = 0.1  # seconds before this step at speed 1.0

    def apply(self, sim: Simulator, ids: dict[str, str]) -> None:
        raise NotImplementedError

    def change(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class CreateRun(Step):
    title: str
    prompt: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def apply(self, sim: Simulator, ids: dict[str, str]) -> None:
        run = sim.create_run(title=self.title, prompt=self.prompt, **dict(self.fields))
        ids[self.key] = run["run_id"]

    def change(self) -> str:
        return f"created ({self.fields.get('state', 'QUEUED')})"


@dataclass(frozen=True, kw_only=True)
class SetState(Step):
    state: str
    status_message: Mapping[str, Any] | None = None

    def apply(self, sim: Simulator, ids: dict[str, str]) -> None:
        extra = {"status_message": dict(self.status_message)} if self.status_message else {}
        sim.update_run(ids[self.key], state=self.state, **extra)

    def change(self) -> str:
        note = f": {self.status_message['message']}" if self.status_message else ""
        return f"state -> {self.state}{note}"


@dataclass(frozen=True, kw_only=True)
class AddArtifact(Step):
    artifact_type: str
    data: Mapping[str, Any] | None = None

    def apply(self, sim: Simulator, ids: dict[str, str]) -> None:
        sim.add_artifact(ids[self.key], self.artifact_type, self.data)

    def change(self) -> str:
        return f"artifact {self.artifact_type}"


@dataclass(frozen=True, kw_only=True)
class SetAttachments(Step):
    attachments: Sequence[Mapping[str, Any]]

    def apply(self, sim: Simulator, ids: dict[str, str]) -> None:
        sim.set_attachments(ids[self.key], self.attachments)

    def change(self) -> str:
        return f"{len(self.attachments)} handoff attachment(s)"


@dataclass(frozen=True, kw_only=True)
class Followup(Step):
    """A human answering the run; goes through the same rules as the API."""

    message: str
    mode: str = "normal"

    def apply(self, sim: Simulator, ids: dict[str, str]) -> None:
        sim.submit_followup(ids[self.key], self.message, self.mode)

    def change(self) -> str:
        return f"follow-up ({self.mode}): {self.message}"


@dataclass(frozen=True, kw_only=True)
class AwaitFollowup(Followup):
    """Wait for someone else (e.g. the bridge) to send a follow-up; after
    ``timeout`` seconds submit ``message`` ourselves so a demo never stalls."""

    timeout: float = 5.0


@dataclass(frozen=True, kw_only=True)
class Cancel(Step):
    """A user cancelling the run from the UI."""

    def apply(self, sim: Simulator, ids: dict[str, str]) -> None:
        sim.cancel_run(ids[self.key])

    def change(self) -> str:
        return "cancelled by user"


Scenario = Sequence[Step]


def _scaled(seconds: float, speed: float) -> float:
    if speed <= 0:
        raise ValueError("speed must be > 0")
    return 0.0 if math.isinf(speed) else seconds / speed


async def _await_followup(sim: Simulator, step: AwaitFollowup, run_id: str, speed: float) -> None:
    already = len(sim.followups(run_id))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _scaled(step.timeout, speed)
    while loop.time() < deadline:
        if len(sim.followups(run_id)) > already:
            return
        await asyncio.sleep(0.02)
    step.apply(sim, {step.key: run_id})


async def play(
    sim: Simulator,
    scenario: Scenario,
    speed: float = 1.0,
    on_step: Callable[[Step, Mapping[str, str]], None] | None = None,
) -> dict[str, str]:
    """Run the steps in order; returns scenario key -> run_id.

    ``speed`` divides every delay (``math.inf`` plays with no delays).
    """
    ids: dict[str, str] = {}
    for step in scenario:
        delay = _scaled(step.delay, speed)
        if delay > 0:
            await asyncio.sleep(delay)
        if isinstance(step, AwaitFollowup):
            await _await_followup(sim, step, ids[step.key], speed)
        else:
            step.apply(sim, ids)
        if on_step is not None:
            on_step(step, ids)
    return ids


def scenario_duration(scenario: Scenario, speed: float = 1.0) -> float:
    """Total scripted delay, excluding any AwaitFollowup waiting."""
    return sum(_scaled(step.delay, speed) for step in scenario)


def describe(scenario: Scenario) -> list[tuple[str, str]]:
    """(run title, change) pairs a demo can print next to what the bridge saw."""
    titles = {s.key: s.title for s in scenario if isinstance(s, CreateRun)}
    return [(titles.get(s.key, s.key), s.change()) for s in scenario]


_REPO = {"agent_config": {"name": "acme-widgets", "environment_id": "EnvAcmeWidgets00000001"}}


def _usage(inference: float, compute: float) -> dict[str, Any]:
    """RunItem.request_usage with its USD figures, so the demo's digest and budget have costs to add up."""
    return {"request_usage": {"inference_cost_usd": inference, "compute_cost_usd": compute}}


DEMO_SCENARIO: tuple[Step, ...] = (
    CreateRun(
        key="fix",
        delay=0.0,
        title="Fix flaky checkout test",
        prompt="Fix the flaky checkout e2e test",
        fields=_REPO | _usage(0.42, 0.08),
    ),
    CreateRun(
        key="upgrade",
        delay=0.05,
        title="Upgrade payments SDK to v5",
        prompt="Upgrade the payments SDK to v5 and fix call sites",
        fields=_REPO | _usage(0.21, 0.05),
    ),
    CreateRun(
        key="migrate",
        delay=0.05,
        title="Migrate billing cron",
        prompt="Move the billing cron job to the new scheduler",
        fields=_REPO,
    ),
    CreateRun(
        key="plan",
        delay=0.05,
        title="Plan search relevance overhaul",
        prompt="Write a plan to improve search relevance",
        fields=_REPO | _usage(1.35, 0.15),
    ),
    CreateRun(
        key="refactor",
        delay=0.05,
        title="Refactor legacy auth middleware",
        prompt="Refactor the legacy auth middleware",
        fields=_REPO,
    ),
    CreateRun(
        key="audit",
        delay=0.05,
        title="Nightly dependency audit",
        prompt="Audit dependencies for known CVEs",
        fields={"source": "SCHEDULED_AGENT"},
    ),
    SetState(key="fix", state="INPROGRESS"),
    SetState(key="upgrade", state="INPROGRESS"),
    SetState(key="migrate", state="INPROGRESS"),
    SetState(key="plan", state="INPROGRESS"),
    SetState(key="refactor", state="INPROGRESS", delay=0.05),
    SetState(key="audit", state="INPROGRESS", delay=0.05),
    AddArtifact(key="plan", artifact_type="PLAN", data={"title": "Search relevance overhaul"}),
    AddArtifact(key="fix", artifact_type="SCREENSHOT", data={"description": "Checkout test passing 50/50"}),
    SetState(
        key="upgrade",
        state="FAILED",
        status_message={
            "message": "Dependency install failed: could not resolve payments-sdk@5.0.0",
            "error_code": "environment_setup_failed",
            "retryable": False,
        },
    ),
    SetState(
        key="migrate",
        state="BLOCKED",
        status_message={"message": "Waiting for approval to pause the production billing cron"},
    ),
    Cancel(key="refactor"),
    AddArtifact(
        key="fix",
        artifact_type="PULL_REQUEST",
        data={"branch": "oz/fix-flaky-checkout", "url": "https://github.com/acme/widgets/pull/4312"},
    ),
    SetState(key="fix", state="SUCCEEDED"),
    SetState(
        key="audit",
        state="ERROR",
        status_message={
            "message": "Sandbox worker became unavailable",
            "error_code": "resource_unavailable",
            "retryable": True,
        },
    ),
    Followup(key="migrate", delay=0.2, message="Approved: pause it during the 02:00 UTC window."),
    AddArtifact(
        key="plan", artifact_type="FILE", data={"filepath": "plans/search-relevance.md", "mime_type": "text/markdown"}
    ),
    SetState(key="plan", state="SUCCEEDED"),
    AddArtifact(
        key="migrate",
        artifact_type="EXTERNAL_REFERENCE",
        data={"url": "https://linear.app/acme/issue/BIL-88", "title": "BIL-88"},
    ),
    AddArtifact(
        key="migrate",
        artifact_type="PULL_REQUEST",
        data={"branch": "oz/billing-cron", "url": "https://github.com/acme/widgets/pull/4313"},
    ),
    SetAttachments(key="migrate", delay=0.0, attachments=({"filename": "workspace-snapshot.tar.gz"},)),
    SetState(key="migrate", state="SUCCEEDED"),
)

DEMO_EXPECTED: list[tuple[str, str]] = describe(DEMO_SCENARIO)

SCENARIOS: dict[str, Scenario] = {"demo": DEMO_SCENARIO}
