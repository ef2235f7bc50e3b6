"""``POST /slack/events`` under a generated corpus of hostile requests, against the real ``oz-bridge run``.

The corpus comes from a fuzzer in its own process (``slack_corpus.py``): random bodies, headers,
encodings and sizes, valid signatures over garbage, forged, stale and replayed signatures, raw
malformed HTTP, mentions that would start runs and messages in DMs, with genuine replies in the
bridge's threads, genuine mentions and genuine DM replies mixed in. Whatever arrives: no 5xx, no
traceback or error in the bridge's log, no follow-up, cancel or run from anything not validly
signed, no second follow-up or second run from a replay, exactly one follow-up per genuine reply
and exactly one run per genuine mention.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridge.sim import Simulator
from tests.e2e.harness import API_KEY, BridgeProcess, fast_config, wait_until
from tests.fakes.slack_api import FakeSlack
from tests.inbound.harness import SIGNING_SECRET

CORPUS = Path(__file__).with_name("slack_corpus.py")
BOT_TOKEN = "xoxb-faults-corpus"
CHANNEL = "C0CORPUS01"
START = "C0CORPST01"
CREATOR = "U0CREATOR"
REQUESTS = int(os.environ.get("OZ_BRIDGE_CORPUS_REQUESTS", "100000"))
THREADS = 12
REAL_REPLIES = 300
REAL_MENTIONS = 20
MENTION_SLOTS = 20  # people's messages in the start channel that mutants may mention the bot in
DM_RUNS = 2
REAL_DM_REPLIES = 40
_TAG = re.compile(r"(REALDM|REAL|FUZZ)-\d+")


@pytest.fixture
def sim_api_key() -> str:
    return API_KEY  # what BridgeProcess gives the bridge


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture
async def bridge(tmp_path: Path, sim_url: str, slack: FakeSlack) -> AsyncIterator[BridgeProcess]:
    config = fast_config(
        {"alerts": {"type": "slack", "channel": CHANNEL}, "mine": {"type": "slack", "channel": "@creator"}},
        [
            {"name": "all", "events": ["*"], "to": ["alerts"]},
            {"name": "dms", "events": ["*"], "creators": ["cora@example.com"], "to": ["mine"]},
        ],
    )
    config["slack"] = {"start": {"channels": [START]}}
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": slack.api_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "OZ_BRIDGE_LOG_LEVEL": "info",
    }
    process = BridgeProcess(tmp_path, sim_url, config, extra_env=env)
    await process.start()
    yield process
    if process.proc is not None and process.proc.returncode is None:
        await process.kill()


def roots(slack: FakeSlack, channel: str = CHANNEL) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if m.get("bot_id") and m.get("thread_ts", m["ts"]) == m["ts"]]


async def run_corpus(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    spec_path, out_path = workdir / "corpus-spec.json", workdir / "corpus-out.json"
    spec_path.write_text(json.dumps(spec))
    proc = await asyncio.create_subprocess_exec(sys.executable, str(CORPUS), str(spec_path), str(out_path))
    assert await proc.wait() == 0, "the fuzzer itself failed"
    result: dict[str, Any] = json.loads(out_path.read_text())
    return result


def problems_in(log: list[str]) -> list[str]:
    bad = []
    for line in log:
        try:
            entry = json.loads(line)
        except ValueError:
            bad.append(line)  # anything but a JSON line is a library printing on its own: a traceback
            continue
        if entry.get("level") in ("error", "critical") or "exception" in entry or "Traceback" in line:
            bad.append(line)
    return bad


@pytest.mark.timeout(300)  # 100,000 requests take about two minutes on a shared 2-core machine
async def test_a_hostile_corpus_gets_no_5xx_and_acts_only_on_genuine_replies(
    sim: Simulator, slack: FakeSlack, bridge: BridgeProcess, tmp_path: Path
) -> None:
    runs = [sim.create_run(state="INPROGRESS")["run_id"] for _ in range(THREADS)]
    slack.add_user(CREATOR, "cora@example.com", name="cora")
    cora = {"uid": "u-cora", "email": "cora@example.com", "display_name": "Cora", "type": "user"}
    dm_runs = [sim.create_run(state="BLOCKED", creator=cora)["run_id"] for _ in range(DM_RUNS)]
    await wait_until(lambda: len(roots(slack)) == THREADS + DM_RUNS, within=30, what="a root per run")
    dm = slack.dm_channel_for(CREATOR)
    await wait_until(lambda: len(roots(slack, dm)) == DM_RUNS, within=30, what="a DM per run of Cora's")
    by_run = {root["metadata"]["event_payload"]["run_id"]: root["ts"] for root in roots(slack)}
    threads = [[CHANNEL, by_run[run_id], run_id] for run_id in runs]
    dm_by_run = {root["metadata"]["event_payload"]["run_id"]: root["ts"] for root in roots(slack, dm)}
    dm_threads = [[dm, dm_by_run[run_id], run_id] for run_id in dm_runs]
    replies = []
    for n in range(REAL_REPLIES):
        channel, root_ts, _ = threads[n % THREADS]
        text = f"REAL-{n} please carry on"
        replies.append([channel, root_ts, slack.post_user_message(channel, text, thread_ts=root_ts)["ts"], text])
    dm_replies = []
    for n in range(REAL_DM_REPLIES):
        channel, status_ts, _ = dm_threads[n % DM_RUNS]
        text = f"REALDM-{n} here is my answer"
        posted = slack.post_user_message(channel, text, user=CREATOR, thread_ts=status_ts)
        dm_replies.append([channel, status_ts, posted["ts"], text])
    mentions = []
    for n in range(REAL_MENTIONS):
        text = f"<@UBOT> REALM-{n} tidy the changelog"
        mentions.append([START, slack.post_user_message(START, text)["ts"], text])
    slots = [slack.post_user_message(START, "<@UBOT> a mention")["ts"] for _ in range(MENTION_SLOTS)]

    spec = {
        "url": f"{bridge.url}/slack/events",
        "secret": SIGNING_SECRET,
        "seed": 20261201,
        "count": REQUESTS,
        "concurrency": 32,
        "threads": threads,
        "replies": replies,
        "response_url": slack.response_url("corpus"),
        "start_channel": START,
        "mention_slots": slots,
        "real_mentions": mentions,
        "dm_threads": dm_threads,
        "dm_replies": dm_replies,
    }
    outcome = await run_corpus(spec, tmp_path)
    print(f"\ncorpus: {outcome['sent']} requests in {outcome['seconds']} s; {len(sim.followups())} follow-ups so far")
    # Validly signed mutants in the bridge's threads are follow-ups too, queued with the genuine ones.
    await wait_until(
        lambda: sum(1 for f in sim.followups() if f.message.startswith("REAL")) >= REAL_REPLIES + REAL_DM_REPLIES,
        within=120,
        what=f"a follow-up for every genuine reply ({len(sim.followups())} follow-ups)",
    )
    await wait_until(
        lambda: sum(1 for r in sim.run_creation.records if "REALM-" in r.body["prompt"]) >= REAL_MENTIONS,
        within=60,
        what=f"a run for every genuine mention ({len(sim.run_creation.records)} runs started)",
    )
    await asyncio.sleep(1.0)  # anything still in flight would show as a second follow-up
    assert await bridge.stop() == 0

    statuses: Counter[str] = Counter()
    for counts in outcome["results"].values():
        statuses.update(counts)
    print(f"statuses {dict(statuses)}; {len(sim.followups())} follow-ups")
    print(json.dumps(outcome["results"], sort_keys=True))
    assert outcome["server_errors"] == []
    assert not [s for s in statuses if s[-3:].isdigit() and int(s[-3:]) >= 500]
    assert problems_in(bridge.output) == []

    messages = [f.message for f in sim.followups()]
    assert not [m for m in messages if "forged" in m.lower()]
    tags = Counter(match.group(0) for m in messages if (match := _TAG.search(m)))
    assert [tag for tag, count in tags.items() if count > 1] == []
    assert {tag for tag in tags if tag.startswith("REAL-")} == {f"REAL-{n}" for n in range(REAL_REPLIES)}
    assert {tag for tag in tags if tag.startswith("REALDM-")} == {f"REALDM-{n}" for n in range(REAL_DM_REPLIES)}
    assert_runs_started_only_by_genuine_signed_mentions(sim, mentions, slots)
    assert sim.cancels() == []  # every click in the corpus is on a message that is no root, or forged


def assert_runs_started_only_by_genuine_signed_mentions(
    sim: Simulator, mentions: list[list[str]], slots: list[str]
) -> None:
    started = [record.body for record in sim.run_creation.records]
    assert not [body for body in started if "forged" in body["prompt"].lower()]
    threads = Counter(body["metadata"]["slack_thread_ts"] for body in started)
    assert [ts for ts, count in threads.items() if count > 1] == []  # one run per message, replays or not
    assert set(threads) <= {ts for _, ts, _ in mentions} | set(slots)
    assert all(body["metadata"]["slack_channel"] == START for body in started)
    by_thread = {body["metadata"]["slack_thread_ts"]: body["prompt"] for body in started}
    for n, (_, ts, _) in enumerate(mentions):
        assert by_thread.get(ts) == f"REALM-{n} tidy the changelog"
    print(f"runs started: {len(started)} ({len(mentions)} genuine mentions, the rest signed mutants)")
