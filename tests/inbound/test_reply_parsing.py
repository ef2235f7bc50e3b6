"""What counts as a person's thread reply, and what follow-up its text asks for (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.inbound.access import AccessPolicy
from bridge.inbound.calls import Refused
from bridge.inbound.replies import Followup, followup_of, inbox_entry, refusal_text, thread_reply_of
from bridge.inbound.worker import WorkerSettings, retry_delay

REPLY: dict[str, Any] = {
    "type": "message",
    "channel": "C1",
    "user": "UHUMAN",
    "ts": "2.000200",
    "thread_ts": "1.000100",
    "text": "hi",
}


def test_a_plain_thread_reply_is_a_reply() -> None:
    reply = thread_reply_of(REPLY)
    assert reply is not None and (reply.channel, reply.thread_ts, reply.user) == ("C1", "1.000100", "UHUMAN")


@pytest.mark.parametrize(
    "change",
    [
        {"thread_ts": None},
        {"thread_ts": "2.000200"},  # the thread's root itself
        {"user": None},
        {"bot_id": "B1"},
        {"bot_profile": {"id": "B1"}},
        {"subtype": "message_changed"},
        {"subtype": "message_deleted"},
        {"subtype": "message_replied"},
        {"subtype": "bot_message"},
        {"type": "reaction_added"},
        {"channel": 42},
    ],
)
def test_anything_else_is_not(change: dict[str, Any]) -> None:
    event = {k: v for k, v in {**REPLY, **change}.items() if v is not None}
    assert thread_reply_of(event) is None
    assert inbox_entry("Ev1", event) is None


def test_message_and_app_mention_for_one_message_share_a_dedupe_key() -> None:
    message, mention = inbox_entry("Ev1", REPLY), inbox_entry("Ev2", {**REPLY, "type": "app_mention"})
    assert message is not None and mention is not None
    assert message.dedupe_key == mention.dedupe_key == "message:C1:2.000200"
    assert message.queue_key == "thread:C1:1.000100"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<@UBOT> do it", Followup("do it", "normal")),
        ("<@UBOT|oz-bridge> do it", Followup("do it", "normal")),
        ("thanks <@UBOT>, and <@UOTHER> too", Followup("thanks , and <@UOTHER> too", "normal")),
        ("/plan make a plan", Followup("make a plan", "plan")),
        ("/plan\nmulti\nline", Followup("multi\nline", "plan")),
        ("<@UBOT> /orchestrate fan out", Followup("fan out", "orchestrate")),
        ("/plans are nice", Followup("/plans are nice", "normal")),
        ("please /plan this", Followup("please /plan this", "normal")),
        ("a &lt;b&gt; &amp;amp; c", Followup("a <b> &amp; c", "normal")),
        ("<@UBOT>", None),
        ("/plan ", None),
        ("   ", None),
    ],
)
def test_followup_text_and_mode(text: str, expected: Followup | None) -> None:
    assert followup_of(text, "UBOT") == expected


@given(st.text())
def test_followup_of_never_raises_and_never_leaves_the_bot_mention(text: str) -> None:
    followup = followup_of(text, "UBOT")
    assert followup is None or (followup.message.strip() and "<@UBOT>" not in followup.message.replace("&lt;", "<"))


def test_refusal_text_escapes_what_the_api_said() -> None:
    text = refusal_text(Refused(409, "busy <!channel> & co"))
    assert "&lt;!channel&gt; &amp; co" in text and "<!channel>" not in text


def test_access_policy_empty_lists_allow_everyone() -> None:
    assert AccessPolicy.of([], []).allows("U1", "C1")
    assert AccessPolicy.of(["U1"], []).allows("U1", "C9")
    assert not AccessPolicy.of(["U1"], []).allows("U2", "C1")
    assert not AccessPolicy.of([], ["C1"]).allows("U1", "C2")
    assert not AccessPolicy.of(["U1"], ["C1"]).allows(None, "C1")


def test_retry_delay_doubles_is_capped_and_honours_the_server() -> None:
    settings = WorkerSettings(first_retry=1.0, max_backoff=10.0, max_retry_after=60.0)
    assert [retry_delay(n, settings, None, 0.5) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert retry_delay(1, settings, 30.0, 0.5) == 30.0
    assert retry_delay(1, settings, 3600.0, 0.5) == 1.0
