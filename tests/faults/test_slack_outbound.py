"""Slack failing around a post, against the real ``oz-bridge run``: never two roots for one (run, channel).

The fake Slack answers 429 or 500 before a call takes effect (Slack's own behaviour), or takes
the call and then loses the answer: 500, 429 (as a proxy might say), a dropped connection, or no
answer at all until the client's timeout. Whatever happened, every run ends with exactly one root
in the channel, and every later event is delivered into its thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridge.sim import Simulator
from tests.e2e.harness import API_KEY, BridgeProcess, fast_config, wait_until
from tests.fakes.slack_api import FakeSlack

BOT_TOKEN = "xoxb-faults-outbound"
CHANNEL = "C0OUTBOUND1"


@pytest.fixture
def sim_api_key() -> str:
    return API_KEY


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture
async def bridge(tmp_path: Path, sim_url: str, slack: FakeSlack) -> AsyncIterator[BridgeProcess]:
    config = fast_config(
        {"alerts": {"type": "slack", "channel": CHANNEL}}, [{"name": "all", "events": ["*"], "to": ["alerts"]}]
    )
    config["delivery"].update(first_retry=0.2, max_backoff=1)
    process = BridgeProcess(
        tmp_path, sim_url, config, extra_env={"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": slack.api_url}
    )
    yield process
    if process.proc is not None and process.proc.returncode is None:
        await process.kill()


def roots_of(slack: FakeSlack, run_id: str) -> list[dict[str, Any]]:
    return [
        m
        for m in slack.messages(CHANNEL)
        if m.get("thread_ts", m["ts"]) == m["ts"]
        and (m.get("metadata") or {}).get("event_payload", {}).get("run_id") == run_id
    ]


def replies_to(slack: FakeSlack, root_ts: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages(CHANNEL) if m.get("thread_ts") == root_ts and m["ts"] != root_ts]


@pytest.mark.parametrize(
    "failure",
    [
        "429 before",
        "500 before",
        "500 after",
        "429 after",
        "reset after",
        pytest.param("hang after", marks=pytest.mark.timeout(180)),
    ],
)
async def test_a_lost_or_refused_root_post_never_makes_a_second_root(
    sim: Simulator, slack: FakeSlack, bridge: BridgeProcess, failure: str
) -> None:
    how, when = failure.split()
    if when == "before":
        if how == "429":
            slack.rate_limit_next("chat.postMessage", count=3, retry_after=1)
        else:
            slack.fail_next("chat.postMessage", "internal_error", count=2, status=500)
    else:
        slack.fail_after_effect("chat.postMessage", how)
    await bridge.start()

    run_id = sim.create_run(state="INPROGRESS")["run_id"]
    await wait_until(lambda: len(roots_of(slack, run_id)) >= 1, within=60, what="the root")
    sim.update_run(run_id, state="SUCCEEDED")
    await wait_until(lambda: _settled(bridge), within=60, what="an empty outbox")
    assert len(roots_of(slack, run_id)) == 1
    root_ts = roots_of(slack, run_id)[0]["ts"]
    await wait_until(
        lambda: any("Succeeded" in str(m.get("text")) for m in replies_to(slack, root_ts)),
        within=60,
        what="the later event in the root's thread",
    )
    await wait_until(lambda: _settled(bridge), within=30, what="an empty outbox")
    assert await bridge.metric("oz_bridge_dead_letters") == 0
    assert await bridge.stop() == 0

    assert len(roots_of(slack, run_id)) == 1
    root = slack.message(CHANNEL, root_ts)
    assert root is not None and "Succeeded" in str(root.get("text"))  # updated in place


async def _settled(bridge: BridgeProcess) -> bool:
    return await bridge.metric("oz_bridge_outbox_depth") == 0
