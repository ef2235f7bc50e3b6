"""``oz-bridge demo --slack``: start and steer a run from Slack, with no Slack workspace and no credentials.

The real bridge runs against the built-in Oz simulator and the Slack stand-in
(``bridge.sim.slack``); a scripted person, Ada, does in the stand-in what she
would do in Slack, and the stand-in sends the bridge what Slack would send
(signed events and clicks on ``POST /slack/events``). Every message the bridge
posts, updates or reacts with is printed as a transcript of the channel:
Ada's mention starts a run, its status message appears in her thread and moves
in place, the plan is posted with ``Approve plan``, her reply becomes a
follow-up, the failed run is retried from its ``Retry`` button, and the retry
succeeds in the same thread.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from bridge.app import Bridge
from bridge.demo import DEMO_KEY, forget_the_environment
from bridge.logs import configure
from bridge.notifiers.slack_messages import RETRY_ACTION_ID
from bridge.notifiers.slack_plans import APPROVE_PLAN_ACTION_ID
from bridge.settings import Settings
from bridge.sim import Simulator, running_simulator
from bridge.sim.artifact_api import add_plan
from bridge.sim.creation import fail_run
from bridge.sim.slack import SlackStandIn
from bridge.sim.slack_events import SlackEvents

BOT_TOKEN = "xoxb-demo-token"
SIGNING_SECRET = "demo-signing-secret"
CHANNEL = "C0DEMO0001"
ADA = "U0ADA00001"
STEP_TIMEOUT = 20.0
PLAN = "# Plan\n\n1. **Profile** the checkout page\n2. Cache the shipping quote\n3. Add a load test"
_MARKUP = re.compile(r"<([@#!]?)([^>|]+)(?:\|([^>]*))?>")


def slack_demo_settings(workdir: Path, oz_url: str, slack_url: str) -> Settings:
    return Settings(
        database_url=f"sqlite:///{workdir / 'bridge.db'}",
        host="127.0.0.1",
        port=0,
        oz={"api_key": DEMO_KEY, "base_url": f"{oz_url}/api/v1"},
        poll={"interval": 0.1, "sweep": 1, "lookback": 2, "start": "now"},
        delivery={"check_interval": 0.05},
        slack={
            "bot_token": BOT_TOKEN,
            "signing_secret": SIGNING_SECRET,
            "api_url": slack_url,
            "start": {"channels": [CHANNEL], "config": {"name": "checkout-agent"}},
        },
    )


def _plain(text: str) -> str:
    """Slack markup as a person sees it: ``<@UBOT>`` as @oz-bridge, links as their label."""

    def shown(match: re.Match[str]) -> str:
        kind, target, label = match.groups()
        if kind == "@":
            return "@" + {ADA: "ada"}.get(target, "oz-bridge")
        return label or target

    return _MARKUP.sub(shown, text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


class Transcript:
    """Prints what happens in the channel, one line per message, update and reaction."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._threads: dict[str, int] = {}  # thread ts → its number in the transcript

    def __call__(self, what: str, message: dict[str, Any]) -> None:
        whose = "ada's" if message.get("user") == ADA else "its"
        who = "ada" if message.get("user") == ADA and what == "posted" else "oz-bridge"
        thread = message.get("thread_ts")
        where = f"  └ thread {self._thread_of(thread)}" if thread and thread != message["ts"] else ""
        text = _plain(str(message.get("text") or "")).replace("\n", " ⏎ ")[:160]
        if what == "posted" and message.get("metadata"):
            line = f"{who} posts the run's status message: {text}"
        elif what == "posted":
            line = f"{who}: {text}"
            if thread is None:
                self._thread_of(str(message["ts"]))
        elif what == "updated":
            line = f"{who} updates its status message in place: {text}"
        elif what == "reacted":
            line = f"{who} reacts :{message['reaction']}: to {whose} message"
        else:
            line = f"(only ada sees) {text}"
        self._out.write(f"#demo{where}  {line}\n")

    def _thread_of(self, ts: str) -> int:
        return self._threads.setdefault(ts, len(self._threads) + 1)


async def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the demo waited {STEP_TIMEOUT:g}s for {what}")
        await asyncio.sleep(0.05)


def _buttons_of(slack: SlackStandIn, action_id: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages(CHANNEL) if action_id in str(m.get("blocks"))]


async def _play(sim: Simulator, slack: SlackStandIn, ada: SlackEvents, out: TextIO) -> None:
    say = out.write
    say("\n— Ada mentions the bot in #demo: the mention starts a run, told in her message's thread.\n")
    mention = await ada.mention(CHANNEL, "/plan make the checkout page load in under a second", user=ADA)
    await _until(lambda: len(sim.run_creation.records) == 1, "the run to be started")
    run_id = sim.run_creation.records[0].run_id
    await _until(lambda: any(m.get("metadata") for m in slack.messages(CHANNEL)), "the status message")

    say("\n— The agent starts and writes a plan; Ada approves it with the Approve plan button.\n")
    await _moved(sim, slack, run_id, "INPROGRESS", "In progress")
    add_plan(sim, run_id, PLAN, {"title": "Faster checkout"})
    await _until(lambda: bool(_buttons_of(slack, APPROVE_PLAN_ACTION_ID)), "the plan")
    plan = _buttons_of(slack, APPROVE_PLAN_ACTION_ID)[0]
    await ada.click(CHANNEL, plan["ts"], APPROVE_PLAN_ACTION_ID, run_id, user=ADA)
    await _until(lambda: len(sim.followups(run_id)) == 1, "the approval to reach the run")

    say("\n— Ada replies in the thread: the reply is a follow-up to the run.\n")
    await ada.reply(CHANNEL, mention.ts, "keep the old /quote endpoint working", user=ADA)
    await _until(lambda: len(sim.followups(run_id)) == 2, "the follow-up")

    say("\n— The run fails; Ada clicks Retry on its status message: a linked run starts in the same thread.\n")
    fail_run(sim, run_id, retryable=True, error_code="internal_error", message="The sandbox ran out of memory")
    await _until(lambda: bool(_buttons_of(slack, RETRY_ACTION_ID)), "the Retry button")
    status = _buttons_of(slack, RETRY_ACTION_ID)[0]
    await ada.click(CHANNEL, status["ts"], RETRY_ACTION_ID, run_id, user=ADA)
    await _until(lambda: len(sim.run_creation.records) == 2, "the retry")
    retry_id = sim.run_creation.records[1].run_id
    await _until(lambda: sum(1 for m in slack.messages(CHANNEL) if m.get("metadata")) == 2, "its status message")

    say("\n— The retry opens a pull request and succeeds.\n")
    await _moved(sim, slack, retry_id, "INPROGRESS", "In progress")
    sim.add_artifact(retry_id, "PULL_REQUEST")
    await _until(lambda: "Pull requests" in str(_status_of(slack, retry_id)), "the pull request on the status")
    await _moved(sim, slack, retry_id, "SUCCEEDED", "Succeeded")


async def _moved(sim: Simulator, slack: SlackStandIn, run_id: str, state: str, shown: str) -> None:
    """Change the run's state and wait until its status message shows it (one change per poll)."""
    sim.update_run(run_id, state=state)
    await _until(lambda: shown in str(_status_of(slack, run_id)), f"the status message to show {shown}")


def _status_of(slack: SlackStandIn, run_id: str) -> dict[str, Any] | None:
    return next((m for m in slack.messages(CHANNEL) if run_id in str(m.get("metadata"))), None)


async def run_slack_demo() -> int:
    forget_the_environment()
    configure("console", "warning")
    out = sys.stdout
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="oz-bridge-demo-slack-") as tmp:
        sim = Simulator(api_key=DEMO_KEY)
        async with running_simulator(sim) as oz_url, SlackStandIn(token=BOT_TOKEN, bot_user_id="U0OZBRIDGE") as slack:
            bridge = Bridge(slack_demo_settings(Path(tmp), oz_url, slack.api_url))
            await bridge.start()
            out.write(
                f"oz-bridge demo --slack: Oz API simulator at {oz_url}, Slack stand-in at {slack.base_url}\n"
                f"The bridge answers Slack at http://127.0.0.1:{bridge.port}/slack/events; mentions in #demo "
                "start runs (slack.start.channels).\n"
            )
            slack.on_change(Transcript(out))
            ada = SlackEvents(slack, f"http://127.0.0.1:{bridge.port}/slack/events", SIGNING_SECRET)
            try:
                await _play(sim, slack, ada, out)
            except TimeoutError as exc:
                out.write(f"\ndemo: {exc}\n")
                return 1
            finally:
                await bridge.stop()
        elapsed = time.monotonic() - started
        out.write(
            f"\ndemo: {len(sim.run_creation.records)} runs started from Slack, {len(sim.followups())} follow-ups "
            f"reached the API, in {elapsed:.1f}s. Done.\n"
        )
    return 0
