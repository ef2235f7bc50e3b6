"""How reminders, stuck runs, budgets and digests are told: console lines, Slack replies, one Slack digest message."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.diff import parse_time
from bridge.digest import DigestTally, DigestWindow, digest_event
from bridge.events import Event, event_id
from bridge.metrics import Metrics
from bridge.notifiers.console import ConsoleNotifier, describe
from bridge.notifiers.slack import SlackContext
from bridge.notifiers.slack_digest import digest_message
from bridge.notifiers.slack_messages import is_broadcast, thread_reply
from bridge.settings import SlackSettings, SlackTarget
from bridge.store import slack_placements, slack_threads
from tests.fakes.slack_api import FakeSlack
from tests.notifiers.test_slack_messages import assert_within_limits

TOKEN = "xoxb-1234-secret-token"
CHANNEL = "C0ALERTS01"
RUN_ID = "run-1"


def run(state: str = "BLOCKED", **extra: Any) -> dict[str, Any]:
    return {
        "run_id": RUN_ID,
        "title": "Migrate billing cron",
        "prompt": "Move the billing cron job",
        "state": state,
        "created_at": "2026-01-01T08:00:00Z",
        "updated_at": "2026-01-01T09:00:00Z",
        "session_link": "https://app.warp.dev/session/abc",
        **extra,
    }


def time_event(kind: str, at: str = "2026-01-01T10:30:00Z", **run_fields: Any) -> Event:
    return Event(event_id(RUN_ID, kind, at), kind, RUN_ID, at, run(**run_fields))


STATUS = {"message": "Waiting for approval to pause the cron"}
REMINDER = time_event("run.still_blocked", status_message=STATUS, metadata={"slack_user": "U012ABCDEF"})


def test_a_reminder_says_how_long_the_run_has_waited_and_mentions_its_creator() -> None:
    text, blocks = thread_reply(REMINDER)
    assert text.splitlines() == [
        "✋ *Still waiting for input* (blocked 1h 30m)",
        "Waiting for approval to pause the cron",
        "<@U012ABCDEF> the agent is waiting for your answer.",
    ]
    assert "Reply in this thread to answer the agent" in json.dumps([b.to_dict() for b in blocks])
    assert not is_broadcast(REMINDER)  # a nudge in the thread, not a second alarm in the channel


@pytest.mark.parametrize("user", ["<!channel>", "U1 <!here>", "u012abc", "", None, 42])
def test_only_a_well_formed_slack_user_id_becomes_a_mention(user: object) -> None:
    text, _ = thread_reply(time_event("run.still_blocked", metadata={"slack_user": user}))
    assert "<@" not in text and "<!" not in text


def test_stuck_and_over_budget_replies() -> None:
    stuck, _ = thread_reply(time_event("run.stuck", state="INPROGRESS"))
    assert stuck == "⏰ *No update for 1h 30m*: still in progress"
    costly = time_event("run.cost_exceeded", state="INPROGRESS", request_usage={"inference_cost_usd": 7.25})
    assert thread_reply(costly)[0] == "💸 *Over the cost budget*: ~$7.25 so far"


def test_the_console_tells_time_events_on_one_line() -> None:
    assert describe(REMINDER) == (
        "run.still_blocked            'Migrate billing cron' (run run-1) BLOCKED, still waiting for input after "
        "1h 30m: Waiting for approval to pause the cron"
    )
    assert describe(time_event("run.stuck", state="QUEUED")).endswith("QUEUED, no update for 1h 30m")
    costly = time_event("run.cost_exceeded", state="INPROGRESS", request_usage={"compute_cost_usd": 12})
    assert describe(costly).endswith("INPROGRESS, over the cost budget at $12.00")


def sample_digest(**extra: Any) -> dict[str, Any]:
    window = DigestWindow.ending("weekday-morning", "Europe/Paris", parse_time("2026-01-06T08:00:00Z"), 86400)
    tally = DigestTally(window)
    failed = run("FAILED", status_message={"message": "Tests <b>failed</b>", "error_code": "internal_error"})
    for item in (failed, run("SUCCEEDED", agent_config={"name": "fixer"}, request_usage={"inference_cost_usd": 1.5})):
        tally.add(item, parse_time("2026-01-06T07:00:00Z"))  # last updated inside the window
    return tally.summary() | extra


async def test_the_console_tells_a_digest_as_one_block() -> None:
    stream = io.StringIO()
    event = digest_event(sample_digest(), "2026-01-06T08:00:02Z")
    assert (await ConsoleNotifier(stream).send(event)).status == "done"
    assert stream.getvalue().splitlines() == [
        "digest                       'weekday-morning': 2 run(s), "
        "2026-01-05 09:00 → 2026-01-06 09:00 Europe/Paris, ~$1.50",
        "  by state: FAILED 1, SUCCEEDED 1",
        "  by agent: (none) 1, fixer 1",
        "  failed: 'Migrate billing cron' (run run-1): Tests <b>failed</b> https://app.warp.dev/session/abc",
    ]


def test_the_slack_digest_counts_states_links_failures_and_escapes_their_text() -> None:
    text, blocks = digest_message(sample_digest())
    assert text == "📊 Digest weekday-morning: 2 run(s), 1 failed, ~$1.50"
    shown = json.dumps([b.to_dict() for b in blocks], ensure_ascii=False)
    assert "*2 runs* · Mon 05 Jan 09:00 → Tue 06 Jan 09:00 Europe/Paris · ~$1.50" in shown
    assert "❌ Failed 1 · ✅ Succeeded 1" in shown
    assert "<https://app.warp.dev/session/abc|Migrate billing cron>: Tests &lt;b&gt;failed&lt;/b&gt;" in shown
    assert "By agent: (none) 1 · fixer 1" in shown


anything = st.text(st.characters(codec="utf-16", exclude_categories=("Cs",)), max_size=400)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(anything, anything, anything), max_size=80), anything)
def test_any_digest_makes_a_message_block_kit_accepts(failures: list[tuple[str, str, str]], name: str) -> None:
    listed = [
        {"run_id": rid, "title": title, "session_link": f"https://x.dev/{rid}", "status_message": {"message": why}}
        for rid, title, why in failures
    ]
    digest = sample_digest(name=name, failed=listed, failed_total=len(listed) + 3, by_agent={name: 1, "a": 2})
    assert_within_limits(*digest_message(digest))


# ---- the Slack notifier ----------------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN) as server:
        yield server


@pytest.fixture
async def context(fake: FakeSlack, engine: AsyncEngine) -> AsyncIterator[SlackContext]:
    ctx = SlackContext(SlackSettings(bot_token=SecretStr(TOKEN), api_url=fake.api_url), engine, Metrics())
    yield ctx
    await ctx.close()


def threads(fake: FakeSlack) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    messages = fake.messages(CHANNEL)
    roots = [m for m in messages if m.get("thread_ts") in (None, m["ts"])]
    return roots, [m for m in messages if m not in roots]


async def test_a_reminder_is_a_reply_in_the_runs_thread(fake: FakeSlack, context: SlackContext) -> None:
    slack = context.notifier_for(SlackTarget(type="slack", channel=CHANNEL))
    blocked = Event(
        "e-blocked", "run.blocked", RUN_ID, "2026-01-01T09:00:01Z", run(status_message=STATUS), "INPROGRESS"
    )
    assert (await slack.send(blocked)).status == "done"
    assert (await slack.send(REMINDER)).status == "done"
    [root], [reply] = threads(fake)
    assert reply["thread_ts"] == root["ts"] and reply["text"].startswith("✋ *Still waiting for input*")
    assert "<@U012ABCDEF>" in reply["text"] and reply.get("subtype") != "thread_broadcast"
    assert "edited" not in root  # the run has not changed: its root stays as it is


async def test_a_reminder_that_is_a_runs_first_event_posts_the_root_and_the_reminder(
    fake: FakeSlack, context: SlackContext
) -> None:
    slack = context.notifier_for(SlackTarget(type="slack", channel=CHANNEL))
    assert (await slack.send(REMINDER)).status == "done"
    assert (await slack.send(REMINDER)).status == "done"  # a redelivery replies again, at-least-once, one root
    [root], replies = threads(fake)
    assert "Migrate billing cron" in root["text"]
    assert [r["thread_ts"] for r in replies] == [root["ts"], root["ts"]]


async def test_a_digest_is_one_channel_message_not_a_run_root(
    fake: FakeSlack, context: SlackContext, engine: AsyncEngine
) -> None:
    slack = context.notifier_for(SlackTarget(type="slack", channel=CHANNEL))
    event = digest_event(sample_digest(), "2026-01-06T08:00:02Z")
    outcome = await slack.send(Event.from_payload(event.to_payload()))  # as the outbox hands it back
    assert outcome.status == "done"
    [message] = fake.messages(CHANNEL)
    assert message["text"].startswith("📊 Digest weekday-morning") and "metadata" not in message
    assert "thread_ts" not in message
    async with engine.connect() as conn:
        assert await slack_threads.get(conn, event.run_id, CHANNEL) is None


async def test_a_reminder_names_a_creator_known_only_by_email_and_asks_slack_once(
    fake: FakeSlack, context: SlackContext
) -> None:
    fake.add_user("U0ADA0001", "ada@example.com", name="ada")
    slack = context.notifier_for(SlackTarget(type="slack", channel=CHANNEL))
    creator = {"email": "ada@example.com", "display_name": "Ada", "uid": "u-ada", "type": "user"}
    for at in ("2026-01-01T10:30:00Z", "2026-01-01T11:00:00Z"):
        assert (await slack.send(time_event("run.still_blocked", at, creator=creator))).status == "done"
    _, replies = threads(fake)
    assert ["<@U0ADA0001> the agent is waiting for your answer." in r["text"] for r in replies] == [True, True]
    assert len(fake.calls_to("users.lookupByEmail")) == 1  # the cache the DM target keeps


async def test_a_reminder_for_a_creator_slack_does_not_know_names_nobody(
    fake: FakeSlack, context: SlackContext
) -> None:
    slack = context.notifier_for(SlackTarget(type="slack", channel=CHANNEL))
    fake.fail_next("users.lookupByEmail", "internal_error", status=500, count=10)
    creator = {"email": "ghost@example.com", "type": "user"}
    assert (await slack.send(time_event("run.still_blocked", creator=creator))).status == "done"
    _, [reply] = threads(fake)
    assert "<@" not in reply["text"]


async def test_a_reminder_in_a_muted_thread_is_not_posted(
    fake: FakeSlack, context: SlackContext, engine: AsyncEngine
) -> None:
    slack = context.notifier_for(SlackTarget(type="slack", channel=CHANNEL))
    blocked = Event("e-blocked", "run.blocked", RUN_ID, "2026-01-01T09:00:01Z", run(status_message=STATUS))
    assert (await slack.send(blocked)).status == "done"
    async with engine.begin() as conn:
        await slack_placements.mute(conn, RUN_ID, CHANNEL, None)
    outcome = await slack.send(REMINDER)
    assert outcome.status == "done" and "muted" in outcome.detail
    [_root], replies = threads(fake)
    assert replies == []
