"""GET /agent/artifacts/{uid} in the simulator, through the official SDK: plans inline, files by signed URL."""

from __future__ import annotations

import aiohttp
import pytest
from oz_agent_sdk import AsyncOzAPI, NotFoundError
from oz_agent_sdk.types.agent_get_artifact_response import (
    FileArtifactResponse,
    PlanArtifactResponse,
    ScreenshotArtifactResponse,
)

from bridge.sim import Simulator
from bridge.sim.artifact_api import add_plan, add_screenshot


async def test_a_plan_comes_back_with_its_markdown(client: AsyncOzAPI, sim: Simulator) -> None:
    rid = sim.create_run(state="INPROGRESS")["run_id"]
    artifact = add_plan(sim, rid, "# Plan\n\n1. do it", {"title": "The plan"})
    plan = await client.agent.get_artifact(artifact["data"]["artifact_uid"])
    assert isinstance(plan, PlanArtifactResponse)
    assert plan.data.content == "# Plan\n\n1. do it" and plan.data.title == "The plan"
    assert plan.data.document_uid == artifact["data"]["document_uid"]


async def test_a_screenshot_is_downloaded_from_its_signed_url(client: AsyncOzAPI, sim: Simulator) -> None:
    rid = sim.create_run(state="INPROGRESS")["run_id"]
    artifact = add_screenshot(sim, rid, b"\x89PNG-the-bytes", description="After the fix")
    shot = await client.agent.get_artifact(artifact["data"]["artifact_uid"])
    assert isinstance(shot, ScreenshotArtifactResponse)
    assert shot.data.content_type == "image/png" and shot.data.description == "After the fix"
    async with aiohttp.ClientSession() as http:
        async with http.get(shot.data.download_url) as response:
            assert response.status == 200 and await response.read() == b"\x89PNG-the-bytes"
        async with http.get(shot.data.download_url.replace("sig=", "sig=0")) as forged:
            assert forged.status == 403


async def test_a_file_artifact_has_a_download_url_too(client: AsyncOzAPI, sim: Simulator) -> None:
    rid = sim.create_run(state="INPROGRESS")["run_id"]
    artifact = sim.add_artifact(rid, "FILE", {"filepath": "out/report.md"})
    found = await client.agent.get_artifact(artifact["data"]["artifact_uid"])
    assert isinstance(found, FileArtifactResponse) and found.data.filename == "report.md"


async def test_an_unknown_artifact_is_404(client: AsyncOzAPI) -> None:
    with pytest.raises(NotFoundError):
        await client.agent.get_artifact("no-such-artifact")
