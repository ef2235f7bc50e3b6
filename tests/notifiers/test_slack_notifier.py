"""The Slack notifier against the fake Slack over HTTP, with a real migrated SQLite database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.events import Event, event_id
from bridge.metrics import Metrics
from bridge.notifiers.slack import SlackContext, SlackNotifier
from bridge.notifiers.slack_messages import CANCEL_ACTION_ID, root_metadata
from bridge.settings import SlackSettings, SlackTarget
from bridge.store import slack_threads
from tests.fakes.slack_api import FakeSlack

TOKEN = "xoxb-1234-secret-token"
CHANNEL = "C0ALERTS01"
RUN_ID = "run-1"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN) as server:
        yield server


@pytest.fixture
async def context(fake: FakeSlack, engine: AsyncEngine) -> AsyncIterator[SlackContext]:
    ctx = make_context(fake, engine)
    yield ctx
    await ctx.close()


def make_context(fake: FakeSlack, engine: AsyncEngine, token: str = TOKEN) -> SlackContext:
    settings = SlackSettings(bot_token=SecretStr(token), api_url=fake.api_url)
    return SlackContext(settings, engine, Metrics())


def notifier(context: SlackContext, channel: str = CHANNEL) -> SlackNotifier:
    return context.notifier_for(SlackTarget(type="slack", channel=channel))


def make_event(kind: str, state: str, minute: int, previous: str | None = None, **extra: Any) -> Event:
    run = {
        "run_id": RUN_ID,
        "title": "Fix the flaky test",
        "prompt": "Make checkout reliable",
        "state": state,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": f"2026-01-01T00:{minute:02d}:00Z",
        "session_link": "https://app.warp.dev/session/abc",
        **extra,
    }
    return Event(event_id(RUN_ID, kind, str(minute)), kind, RUN_ID, run["updated_at"], run, previous)


STARTED = make_event("run.started", "INPROGRESS", 1)
FAILED = make_event("run.failed", "FAILED", 2, "INPROGRESS", status_message={"message": "tests fail"})


def roots(fake: FakeSlack, channel: str = CHANNEL) -> list[dict[str, Any]]:
    return [m for m in fake.messages(channel) if "thread_ts" not in m or m["thread_ts"] == m["ts"]]


def replies(fake: FakeSlack, channel: str = CHANNEL) -> list[dict[str, Any]]:
    return [m for m in fake.messages(channel) if m.get("thread_ts") not in (None, m["ts"])]


async def test_the_first_event_posts_one_root_and_remembers_it(
    fake: FakeSlack, context: SlackContext, engine: AsyncEngine
) -> None:
    outcome = await notifier(context).send(STARTED)
    assert outcome.status == "done"
    [root] = roots(fake)
    assert root["metadata"] == root_metadata(RUN_ID).to_dict()
    assert CANCEL_ACTION_ID in str(root["blocks"])
    assert replies(fake) == []  # the root says it all; the thread starts with the next change
    async with engine.connect() as conn:
        thread = await slack_threads.get(conn, RUN_ID, CHANNEL)
        assert thread is not None and (thread.channel_id, thread.ts) == (CHANNEL, root["ts"])
        assert await slack_threads.find_by_root(conn, CHANNEL, root["ts"]) == thread


async def test_a_failure_updates_the_root_and_broadcasts_a_reply(fake: FakeSlack, context: SlackContext) -> None:
    slack = notifier(context)
    await slack.send(STARTED)
    assert (await slack.send(FAILED)).status == "done"
    [root] = roots(fake)
    [update] = fake.calls_to("chat.update")
    assert update.args["ts"] == root["ts"]
    assert "Failed" in root["text"] and CANCEL_ACTION_ID not in str(root["blocks"])
    [reply] = replies(fake)
    assert reply["thread_ts"] == root["ts"] and reply["subtype"] == "thread_broadcast"
    assert "tests fail" in reply["text"]


async def test_quiet_changes_reply_in_the_thread_only(fake: FakeSlack, context: SlackContext) -> None:
    slack = notifier(context)
    await slack.send(STARTED)
    await slack.send(make_event("run.succeeded", "SUCCEEDED", 3, "INPROGRESS"))
    [reply] = replies(fake)
    assert "subtype" not in reply
    assert fake.calls_to("chat.postMessage")[-1].args.get("reply_broadcast") in (None, False)


async def test_a_restart_keeps_the_same_root(fake: FakeSlack, engine: AsyncEngine) -> None:
    first = make_context(fake, engine)
    await notifier(first).send(STARTED)
    await first.close()
    second = make_context(fake, engine)
    try:
        assert (await notifier(second).send(FAILED)).status == "done"
    finally:
        await second.close()
    assert len(roots(fake)) == 1 and len(replies(fake)) == 1


async def leave_marker(engine: AsyncEngine, claimed_by: str, age: timedelta, event: Event = STARTED) -> None:
    async with engine.begin() as conn:
        now = datetime.now(UTC) - age
        await slack_threads.reserve(
            conn, RUN_ID, CHANNEL, channel_id=CHANNEL, claimed_by=claimed_by, event_id=event.id, now=now
        )


async def test_a_crash_between_posting_and_recording_leaves_one_root(
    fake: FakeSlack, context: SlackContext, engine: AsyncEngine
) -> None:
    await leave_marker(engine, "crashed-process", timedelta(seconds=5))
    web = AsyncWebClient(token=TOKEN, base_url=fake.api_url)
    posted = await web.chat_postMessage(channel=CHANNEL, text="root", metadata=root_metadata(RUN_ID))
    assert (await notifier(context).send(STARTED)).status == "done"
    assert [m["ts"] for m in roots(fake)] == [posted["ts"]]
    assert replies(fake) == []  # the retried event is the one the root was posted for
    assert fake.calls_to("chat.update")  # and the root now shows it properly
    async with engine.connect() as conn:
        assert (await slack_threads.get(conn, RUN_ID, CHANNEL)).ts == posted["ts"]  # type: ignore[union-attr]


async def test_a_peer_still_posting_is_waited_for(fake: FakeSlack, context: SlackContext, engine: AsyncEngine) -> None:
    await leave_marker(engine, "live-peer", timedelta(seconds=10))
    outcome = await notifier(context).send(STARTED)
    assert outcome.status == "retry" and outcome.retry_after is not None and 0 < outcome.retry_after <= 110
    assert fake.calls_to("chat.postMessage") == []


async def test_a_stale_marker_without_a_root_is_taken_over(
    fake: FakeSlack, context: SlackContext, engine: AsyncEngine
) -> None:
    await leave_marker(engine, "gone-peer", timedelta(minutes=5))
    assert (await notifier(context).send(STARTED)).status == "done"
    assert len(roots(fake)) == 1


async def test_two_targets_on_one_channel_share_one_root(fake: FakeSlack, context: SlackContext) -> None:
    outcomes = await asyncio.gather(notifier(context).send(STARTED), notifier(context).send(STARTED))
    assert [o.status for o in outcomes] == ["done", "done"]
    assert len(roots(fake)) == 1 and replies(fake) == []


async def test_a_channel_given_by_name_resolves_to_its_id(fake: FakeSlack, context: SlackContext) -> None:
    slack = notifier(context, "#alerts")
    await slack.send(STARTED)
    await slack.send(FAILED)
    assert len(roots(fake, "#alerts")) == 1 and len(replies(fake, "#alerts")) == 1
    assert fake.calls_to("chat.update")[0].args["channel"].startswith("C")


async def test_a_deleted_root_is_replaced(fake: FakeSlack, context: SlackContext, engine: AsyncEngine) -> None:
    slack = notifier(context)
    await slack.send(STARTED)
    fake.delete_message(CHANNEL, roots(fake)[0]["ts"])
    assert (await slack.send(FAILED)).status == "done"
    [root] = roots(fake)
    assert "Failed" in root["text"]
    async with engine.connect() as conn:
        assert (await slack_threads.get(conn, RUN_ID, CHANNEL)).ts == root["ts"]  # type: ignore[union-attr]


async def test_a_replayed_older_event_does_not_roll_the_root_back(fake: FakeSlack, context: SlackContext) -> None:
    slack = notifier(context)
    await slack.send(STARTED)
    await slack.send(FAILED)
    await slack.send(make_event("run.started", "INPROGRESS", 1, "QUEUED"))
    assert len(fake.calls_to("chat.update")) == 1
    assert "Failed" in roots(fake)[0]["text"]


async def test_a_long_rate_limit_goes_back_to_the_outbox_with_its_delay(fake: FakeSlack, context: SlackContext) -> None:
    fake.rate_limit_next("chat.postMessage", count=3, retry_after=30)
    outcome = await notifier(context).send(STARTED)
    assert (outcome.status, outcome.detail, outcome.retry_after) == ("retry", "slack error: ratelimited", 30.0)
    assert len(fake.calls_to("chat.postMessage")) == 1


async def test_a_short_rate_limit_on_a_thread_reply_is_waited_out_by_the_sdk(
    fake: FakeSlack, context: SlackContext
) -> None:
    assert (await notifier(context).send(STARTED)).status == "done"
    fake.rate_limit_next("chat.postMessage", count=1, retry_after=0)
    assert (await notifier(context).send(FAILED)).status == "done"
    assert len(fake.calls_to("chat.postMessage")) == 3 and len(roots(fake)) == 1 and len(replies(fake)) == 1


@pytest.mark.parametrize("how", ["429", "reset"])
async def test_a_root_post_is_never_repeated_in_place_even_when_its_answer_was_lost(
    fake: FakeSlack, context: SlackContext, how: str
) -> None:
    # A 429 or a dropped connection may follow a post that took effect: only the marker knows.
    fake.fail_after_effect("chat.postMessage", how)
    assert (await notifier(context).send(STARTED)).status == "retry"
    assert len(fake.calls_to("chat.postMessage")) == 1
    assert (await notifier(context).send(STARTED)).status == "done"  # the outbox's retry finds the root
    assert len(roots(fake)) == 1 and len(fake.calls_to("chat.postMessage")) == 1


@pytest.mark.parametrize(
    ("error", "status", "expected"),
    [
        ("channel_not_found", 200, "permanent"),
        ("not_in_channel", 200, "permanent"),
        ("is_archived", 200, "permanent"),
        ("invalid_blocks", 200, "permanent"),
        ("internal_error", 200, "retry"),
        ("service_unavailable", 503, "retry"),
        ("fatal_error", 500, "retry"),
    ],
)
async def test_slack_errors_are_classified_with_their_code(
    fake: FakeSlack, context: SlackContext, error: str, status: int, expected: str
) -> None:
    fake.fail_next("chat.postMessage", error, status=status)
    outcome = await notifier(context).send(STARTED)
    assert (outcome.status, outcome.detail) == (expected, f"slack error: {error}")


async def test_a_bad_token_is_permanent_and_never_shown(
    fake: FakeSlack, engine: AsyncEngine, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = "xoxb-9999-wrong-token"
    ctx = make_context(fake, engine, token=wrong)
    try:
        outcome = await notifier(ctx).send(STARTED)
    finally:
        await ctx.close()
    assert (outcome.status, outcome.detail) == ("permanent", "slack error: invalid_auth")
    seen = caplog.text + "".join(capsys.readouterr())
    assert wrong not in seen and wrong not in outcome.detail


async def test_an_unreachable_slack_is_retried(engine: AsyncEngine) -> None:
    async with FakeSlack(token=TOKEN) as gone:
        ctx = make_context(gone, engine)
    try:
        outcome = await notifier(ctx).send(STARTED)
    finally:
        await ctx.close()
    assert outcome.status == "retry" and outcome.detail.startswith("slack connection error")
