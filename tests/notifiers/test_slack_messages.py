"""Root messages and thread replies: what they say, and that Block Kit accepts them whatever the run holds."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bridge.events import Event
from bridge.notifiers.slack_messages import (
    CANCEL_ACTION_ID,
    GET_FILES_ACTION_ID,
    OPEN_SESSION_ACTION_ID,
    format_cost,
    format_duration,
    is_broadcast,
    preview_lines,
    root_message,
    thread_reply,
    truncate,
    utf16_len,
)

RUN_ID = "7d5c9a52-0000-4000-8000-000000000001"


def run(state: str = "INPROGRESS", **extra: Any) -> dict[str, Any]:
    return {
        "run_id": RUN_ID,
        "title": "Fix the flaky checkout test",
        "prompt": "Find out why checkout fails one time in five.",
        "state": state,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:01:00Z",
        "source": "API",
        "creator": {"display_name": "Ada Lovelace"},
        "session_link": "https://app.warp.dev/session/abc",
        "artifacts": [],
        **extra,
    }


def event(kind: str, state: str = "INPROGRESS", previous: str | None = None, **extra: Any) -> Event:
    artifact = extra.pop("artifact", None)
    return Event("evt_1", kind, RUN_ID, "2026-01-01T00:01:00Z", run(state, **extra), previous, artifact)


def dicts(blocks: list[Block]) -> list[dict[str, Any]]:
    return [block.to_dict() for block in blocks]


def buttons(blocks: list[Block]) -> dict[str, dict[str, Any]]:
    found = {}
    for block in dicts(blocks):
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            found[element["action_id"]] = element
    return found


def texts(blocks: list[Block]) -> str:
    return json.dumps(dicts(blocks), ensure_ascii=False)


def test_a_running_run_offers_its_session_and_a_confirmed_cancel() -> None:
    text, blocks = root_message(run("INPROGRESS"))
    assert "In progress" in text and "Fix the flaky checkout test" in text
    found = buttons(blocks)
    assert found[OPEN_SESSION_ACTION_ID]["url"] == "https://app.warp.dev/session/abc"
    cancel = found[CANCEL_ACTION_ID]
    assert (cancel["value"], cancel["style"]) == (RUN_ID, "danger")
    assert cancel["confirm"]["confirm"]["text"] == "Cancel run"
    assert GET_FILES_ACTION_ID not in found


def test_cancel_only_while_the_run_can_still_be_cancelled() -> None:
    for state in ("SUCCEEDED", "FAILED", "BLOCKED", "CANCELLED", "ERROR"):
        assert CANCEL_ACTION_ID not in buttons(root_message(run(state))[1])
    github_action = run("QUEUED", is_run_type_cancellable=False)
    assert CANCEL_ACTION_ID not in buttons(root_message(github_action)[1])


def test_get_files_on_ended_runs_that_left_files() -> None:
    file_artifact = {"artifact_type": "FILE", "created_at": "2026-01-01T00:00:30Z", "data": {"filename": "r.md"}}
    assert GET_FILES_ACTION_ID in buttons(root_message(run("SUCCEEDED", artifacts=[file_artifact]))[1])
    assert GET_FILES_ACTION_ID in buttons(root_message(run("FAILED"), channel_has_files=True)[1])
    assert GET_FILES_ACTION_ID not in buttons(root_message(run("SUCCEEDED"))[1])
    assert GET_FILES_ACTION_ID not in buttons(root_message(run("INPROGRESS", artifacts=[file_artifact]))[1])
    assert buttons(root_message(run("SUCCEEDED"), channel_has_files=True)[1])[GET_FILES_ACTION_ID]["value"] == RUN_ID


def test_a_failed_root_says_why_with_facts_and_links() -> None:
    failed = run(
        "FAILED",
        status_message={"message": "Tests still failing", "error_code": "internal_error"},
        agent_config={"name": "fixer"},
        run_time="PT2M30S",
        request_usage={"inference_cost_usd": 0.3, "compute_cost_usd": 0.12, "inference_cost": 40},
        artifacts=[
            {"artifact_type": "PULL_REQUEST", "data": {"url": "https://github.com/acme/shop/pull/42", "branch": "b"}},
            {"artifact_type": "PLAN", "data": {"title": "The plan", "url": "https://app.warp.dev/drive/p"}},
        ],
    )
    text, blocks = root_message(failed)
    assert text.startswith("❌ Failed") and "Tests still failing" in text
    body = texts(blocks)
    for expected in ("`internal_error`", "fixer", "2m 30s", "~$0.42", "Ada Lovelace", "API"):
        assert expected in body
    assert "<https://github.com/acme/shop/pull/42|acme/shop#42>" in body
    assert "<https://app.warp.dev/drive/p|The plan>" in body


def test_user_text_cannot_mention_link_or_break_mrkdwn() -> None:
    sneaky = run("FAILED", title="<!channel> & <https://evil|x>", prompt="a > b", status_message={"message": "<@U1>"})
    text, blocks = root_message(sneaky)
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp;" in text
    body = dicts(blocks)
    assert body[0]["text"]["text"] == "<!channel> & <https://evil|x>"  # plain_text header shows it as typed
    assert "&lt;@U1&gt;" in body[1]["text"]["text"]
    assert body[2]["text"]["text"] == ">a &gt; b"


def test_truncation_counts_utf16_and_never_splits_characters_or_entities() -> None:
    assert truncate("short", 10) == "short"
    cut = truncate("a" + "😀" * 10, 6)
    assert utf16_len(cut) <= 6 and cut.endswith("…") and "\ud83d" not in cut
    assert truncate("ab &amp; cd", 6, mrkdwn=True) == "ab …"
    assert truncate("see <https://example.com/x|link>", 12, mrkdwn=True) == "see …"


def test_a_long_status_message_keeps_the_fallback_text_within_4000_characters() -> None:
    long = "a failure explained at great length " * 400
    text, _ = root_message(run("FAILED", status_message={"message": long, "error_code": "internal_error"}))
    reply, _ = thread_reply(event("run.failed", "FAILED", "INPROGRESS", status_message={"message": long}))
    assert utf16_len(text) <= 4000 and text.endswith("…")
    assert utf16_len(reply) <= 4000 and reply.endswith("…")


def test_durations_and_costs() -> None:
    assert format_duration("PT2M30S") == "2m 30s"
    assert format_duration("P1DT2H") == "1d 2h"
    assert format_duration("PT0.4S") == "<1s"
    assert format_duration("soon") is None
    assert format_cost({"request_usage": {"platform_cost_usd": 0.001}}) == "<$0.01"
    assert format_cost({"request_usage": {"compute_cost": 3}}) is None


def test_replies_say_what_changed_and_failures_are_broadcast() -> None:
    failed = event("run.failed", "FAILED", "INPROGRESS", status_message={"message": "boom", "error_code": "x"})
    text, _ = thread_reply(failed)
    assert text.startswith("❌ *Failed* (was in progress)") and "boom" in text
    assert is_broadcast(failed) and is_broadcast(event("run.blocked", "BLOCKED"))
    assert not is_broadcast(event("run.succeeded", "SUCCEEDED"))
    _, blocked_blocks = thread_reply(event("run.blocked", "BLOCKED", "INPROGRESS"))
    assert "/plan" in texts(blocked_blocks)
    done_text, _ = thread_reply(event("run.succeeded", "SUCCEEDED", "INPROGRESS", run_time="PT1H"))
    assert "Ran 1h" in done_text


def test_artifact_replies_link_the_artifact() -> None:
    pr = {"artifact_type": "PULL_REQUEST", "data": {"url": "https://github.com/acme/shop/pull/7", "branch": "fix"}}
    text, _ = thread_reply(event("artifact.pull_request", artifact=pr))
    assert "<https://github.com/acme/shop/pull/7|acme/shop#7>" in text and "`fix`" in text
    odd, _ = thread_reply(event("artifact.video", artifact={"artifact_type": "VIDEO", "data": {}}))
    assert "Artifact video" in odd


def test_preview_shows_root_and_reply_as_json() -> None:
    lines = preview_lines(event("run.failed", "FAILED", "INPROGRESS"))
    assert "broadcast" in lines[3]
    assert json.loads(lines[2])["blocks"][0]["type"] == "header"
    assert json.loads(lines[5])["blocks"][0]["type"] == "section"


anything = st.text(st.characters(exclude_categories=()), max_size=5000)  # lone surrogates too
optional_text = st.none() | anything
states = st.sampled_from(["QUEUED", "PENDING", "CLAIMED", "INPROGRESS", "SUCCEEDED", "FAILED", "BLOCKED", "ERROR", "X"])


@st.composite
def wild_runs(draw: st.DrawFn) -> dict[str, Any]:
    artifact = st.fixed_dictionaries(
        {
            "artifact_type": st.sampled_from(["PULL_REQUEST", "PLAN", "FILE", "EXTERNAL_REFERENCE", "SCREENSHOT"]),
            "data": st.fixed_dictionaries(
                {"url": st.text(max_size=40).map(lambda s: "https://x.dev/" + s), "title": anything}
            ),
        }
    )
    return run(
        draw(states),
        title=draw(anything),
        prompt=draw(anything),
        creator={"display_name": draw(optional_text)},
        agent_config={"name": draw(optional_text)},
        status_message={"message": draw(anything), "error_code": draw(optional_text)},
        run_time=draw(st.text(max_size=20)),
        artifacts=draw(st.lists(artifact, max_size=30)),
    )


def assert_within_limits(text: str, blocks: list[Block]) -> None:
    assert utf16_len(text) <= 4000  # Slack's recommended limit for the fallback text
    for block in blocks:
        block.validate_json()
        encoded = json.dumps(block.to_dict(), ensure_ascii=False).encode("utf-8")  # no lone surrogates
        payload = json.loads(encoded)
        if payload["type"] == "header":
            assert utf16_len(payload["text"]["text"]) <= 150
        if payload["type"] == "section":
            assert utf16_len(payload["text"]["text"]) <= 3000
        for element in payload.get("elements", []):
            if element.get("type") == "button":
                assert utf16_len(element["text"]["text"]) <= 75


@settings(max_examples=60, deadline=None)
@given(wild_runs(), st.booleans())
def test_any_run_makes_messages_block_kit_accepts(wild: dict[str, Any], files: bool) -> None:
    assert_within_limits(*root_message(wild, channel_has_files=files))
    kind = {"FAILED": "run.failed", "BLOCKED": "run.blocked"}.get(wild["state"], "run.state_changed")
    assert_within_limits(*thread_reply(Event("e", kind, RUN_ID, "t", wild, "QUEUED")))
    for artifact in wild["artifacts"][:3]:
        assert_within_limits(*thread_reply(Event("e", "artifact.x", RUN_ID, "t", wild, None, artifact)))
