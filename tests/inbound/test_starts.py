"""A person's mention of the bot in a start channel starts exactly one run, told in that message's thread.

The real inbound over HTTP (signed requests), the Oz simulator and the fake Slack, through the SDKs.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from bridge.inbound.images import MAX_IMAGE_BYTES
from bridge.sim.creation import refuse_next_runs
from bridge.store import inbox, slack_started
from tests.inbound.harness import CHANNEL, HUMAN, Harness, HarnessFactory

OTHER_CHANNEL = "C0ELSEWHERE"
CONFIG = {"name": "fixer", "model_id": "claude-4"}


def mention(harness: Harness, text: str, *, channel: str = CHANNEL, user: str = HUMAN, **extra: Any) -> dict[str, Any]:
    """A top-level message mentioning the bot, as the app_mention event Slack sends for it."""
    message = harness.fake.post_user_message(channel, f"<@UBOT> {text}", user=user)
    return {"type": "app_mention", "channel": channel, "user": user, "text": message["text"],
            "ts": message["ts"], "event_ts": message["ts"], **extra}  # fmt: skip


async def starting(make_harness: HarnessFactory, **slack: Any) -> Harness:
    starts = {"channels": [CHANNEL], "config": CONFIG, **slack.pop("slack_start", {})}
    return await make_harness(slack_start=starts, **slack)


async def test_a_mention_starts_one_run_with_its_prompt_mode_metadata_and_config(make_harness: HarnessFactory) -> None:
    harness = await starting(make_harness)
    event = mention(harness, "/plan make the checkout flow &amp; its tests reliable")

    assert (await harness.post_event(event)).status == 200
    await harness.settle()

    [created] = harness.sim.run_creation.records
    assert created.body["prompt"] == "make the checkout flow & its tests reliable"
    assert created.body["mode"] == "plan"
    assert created.body["config"] == CONFIG
    assert created.body["metadata"] == {"slack_channel": CHANNEL, "slack_thread_ts": event["ts"], "slack_user": HUMAN}
    assert "attachments" not in created.body and "on_behalf_of" not in created.body
    assert [r["name"] for r in harness.fake.message(CHANNEL, event["ts"])["reactions"]] == ["eyes"]  # type: ignore[index]
    async with harness.engine.connect() as conn:
        started = await slack_started.load(conn, (CHANNEL, event["ts"]))
    assert started is not None and started.run_id == created.run_id


async def test_the_message_and_app_mention_pair_and_slack_retries_start_one_run(make_harness: HarnessFactory) -> None:
    harness = await starting(make_harness)
    event = mention(harness, "fix the flaky test")

    await harness.post_event({**event, "type": "message", "channel_type": "channel"}, event_id="Ev-msg")
    await harness.post_event(event, event_id="Ev-mention")
    await harness.post_event(event, event_id="Ev-mention")  # Slack's retry
    await harness.settle()
    await harness.post_event(event, event_id="Ev-mention")  # a late retry, after the run started
    await harness.settle()

    assert len(harness.sim.run_creation.records) == 1
    async with harness.engine.connect() as conn:
        assert [row.kind for row in await inbox.all_rows(conn)] == ["slack_start"]


async def test_a_row_acted_on_again_after_a_crash_finds_the_run_instead_of_starting_another(
    make_harness: HarnessFactory,
) -> None:
    harness = await starting(make_harness)
    event = mention(harness, "fix the flaky test")
    # The create call went through, then the process died before recording anything.
    meta = {"slack_channel": CHANNEL, "slack_thread_ts": event["ts"], "slack_user": HUMAN}
    earlier = harness.sim.create_run(prompt="fix the flaky test", metadata=meta)
    await harness.post_event(event)
    await harness.settle()
    assert harness.sim.run_creation.records == []
    async with harness.engine.connect() as conn:
        started = await slack_started.load(conn, (CHANNEL, event["ts"]))
    assert started is not None and started.run_id == earlier["run_id"]


async def test_a_mention_where_starting_is_off_stores_and_says_nothing(make_harness: HarnessFactory) -> None:
    harness = await starting(make_harness)
    event = mention(harness, "do something", channel=OTHER_CHANNEL)

    assert (await harness.post_event(event)).status == 200
    await harness.settle()

    assert harness.sim.run_creation.records == []
    assert harness.fake.calls_to("chat.postMessage") == [] and harness.fake.calls_to("reactions.add") == []
    assert harness.metrics.slack_ignored.labels("start_not_enabled")._value.get() == 1
    async with harness.engine.connect() as conn:
        assert await inbox.all_rows(conn) == []


async def test_any_channel_the_bot_is_in_but_not_a_dm_with_a_star(make_harness: HarnessFactory) -> None:
    harness = await make_harness(slack_start={"channels": ["*"]})
    await harness.post_event(mention(harness, "tidy the changelog", channel=OTHER_CHANNEL))
    await harness.post_event(mention(harness, "and this", channel="D0DIRECT01"))
    await harness.settle()
    assert [r.body["metadata"]["slack_channel"] for r in harness.sim.run_creation.records] == [OTHER_CHANNEL]


async def test_a_refusal_is_explained_in_the_thread_in_words(make_harness: HarnessFactory) -> None:
    harness = await starting(make_harness)
    refuse_next_runs(harness.sim, 402, "insufficient_credits", "Team has 0 credits")
    event = mention(harness, "fix it")

    await harness.post_event(event)
    await harness.settle()

    [answer] = harness.fake.calls_to("chat.postMessage")
    assert answer.args["thread_ts"] == event["ts"]
    assert "not started" in answer.args["text"] and "no Oz credits left" in answer.args["text"]
    assert "Team has 0 credits" in answer.args["text"]


async def test_a_mention_with_nothing_to_do_gets_a_hint_and_starts_nothing(make_harness: HarnessFactory) -> None:
    harness = await starting(make_harness)
    await harness.post_event(mention(harness, "  /plan  "))
    await harness.settle()
    assert harness.sim.run_creation.records == []
    [hint] = harness.fake.calls_to("chat.postMessage")
    assert "Tell me what to do" in hint.args["text"]


async def test_allowed_users_applies_to_starting(make_harness: HarnessFactory) -> None:
    harness = await starting(make_harness, allowed_users=["U0TRUSTED1"])
    await harness.post_event(mention(harness, "delete everything"))
    await harness.settle()
    assert harness.sim.run_creation.records == []
    [ephemeral] = harness.fake.calls_to("chat.postEphemeral")
    assert ephemeral.args["user"] == HUMAN and "can't start Oz runs" in ephemeral.args["text"]


async def test_attached_images_go_as_attachments_and_what_cannot_go_is_said(make_harness: HarnessFactory) -> None:
    harness = await starting(make_harness)
    files = harness.fake.files
    shots = [files.add_file(f"shot-{n}.png", "image/png", f"png-{n}".encode()) for n in range(6)]
    pdf = files.add_file("spec.pdf", "application/pdf", b"%PDF")
    huge = files.add_file("huge.jpg", "image/jpeg", b"x" * (MAX_IMAGE_BYTES + 1))
    event = {**mention(harness, "match these screens"), "files": [{"id": f["id"]} for f in [pdf, huge, *shots]]}

    await harness.post_event(event)
    await harness.settle()

    [created] = harness.sim.run_creation.records
    sent = created.body["attachments"]
    assert [(a["file_name"], a["mime_type"]) for a in sent] == [(f"shot-{n}.png", "image/png") for n in range(5)]
    assert base64.b64decode(sent[0]["data"]) == b"png-0"
    [note] = harness.fake.calls_to("chat.postMessage")
    assert note.args["thread_ts"] == event["ts"]
    for left_out in ("spec.pdf", "huge.jpg", "shot-5.png"):
        assert left_out in note.args["text"]


async def test_the_bot_token_goes_only_to_slacks_file_host(make_harness: HarnessFactory, aiohttp_server: Any) -> None:
    seen: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.Response(body=b"png", content_type="image/png")

    app = web.Application()
    app.router.add_get("/{tail:.*}", elsewhere)
    server = await aiohttp_server(app)
    harness = await starting(make_harness)
    file = harness.fake.files.add_file("shot.png", "image/png", b"png")
    harness.fake.files.describe_as(file["id"], url_private=str(server.make_url("/shot.png")))
    await harness.post_event({**mention(harness, "look"), "files": [{"id": file["id"]}]})
    await harness.settle()

    assert seen == []
    [created] = harness.sim.run_creation.records
    assert "attachments" not in created.body


async def test_on_behalf_of_sends_the_persons_slack_email(make_harness: HarnessFactory) -> None:
    harness = await starting(make_harness, slack_start={"on_behalf_of": True})
    harness.fake.add_user(HUMAN, "ada@example.com", name="ada")
    await harness.post_event(mention(harness, "fix it"))
    await harness.post_event(mention(harness, "and this", user="U0NOEMAIL1"))  # Slack knows no email for them
    await harness.settle()
    [created] = harness.sim.run_creation.records
    assert created.body["on_behalf_of"] == "ada@example.com"
    [refusal] = harness.fake.calls_to("chat.postMessage")
    assert "on behalf of the person who asks" in refusal.args["text"]


async def test_a_reply_in_the_started_thread_before_its_status_message_is_a_follow_up_to_the_new_run(
    make_harness: HarnessFactory,
) -> None:
    harness = await starting(make_harness)
    event = mention(harness, "fix it")
    await harness.post_event(event)
    reply = harness.fake.post_user_message(CHANNEL, "also update the docs", thread_ts=event["ts"])
    reply_event = {"type": "message", "channel": CHANNEL, "channel_type": "channel", "user": HUMAN,
                   "text": reply["text"], "ts": reply["ts"], "thread_ts": event["ts"]}  # fmt: skip
    assert (await harness.post_event(reply_event)).status == 200
    await harness.settle()

    [created] = harness.sim.run_creation.records
    assert [f.message for f in harness.sim.followups(created.run_id)] == ["also update the docs"]


async def test_two_replicas_a_mention_on_one_and_the_reply_on_the_other_before_any_status_message(
    make_harness: HarnessFactory,
) -> None:
    first, second = await starting(make_harness), await starting(make_harness)
    event = mention(first, "fix it")
    await first.post_event(event)
    reply = first.fake.post_user_message(CHANNEL, "and the docs", thread_ts=event["ts"])
    reply_event = {"type": "message", "channel": CHANNEL, "channel_type": "channel", "user": HUMAN,
                   "text": reply["text"], "ts": reply["ts"], "thread_ts": event["ts"]}  # fmt: skip
    assert (await second.post_event(reply_event)).status == 200  # the second replica never saw the mention

    async with second.engine.connect() as conn:
        assert len(await inbox.all_rows(conn)) == 2  # the reply was kept, not dropped as foreign
    await second.settle()  # the reply waits behind the mention in the thread's queue; both settle here
    [created] = first.sim.run_creation.records
    assert [f.message for f in first.sim.followups(created.run_id)] == ["and the docs"]
