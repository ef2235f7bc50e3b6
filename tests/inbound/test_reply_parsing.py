"""What counts as a person's thread reply, and what follow-up its text asks for (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.inbound.access import AccessPolicy
from bridge.inbound.calls import Refused
from bridge.inbound.replies import Followup, followup_of, inbox_entry, refusal_text, thread_reply_of
from bridge.inbound.request import SlackMessage, message_of
from bridge.inbound.worker import WorkerSettings, retry_delay

REPLY: dict[str, Any] = {
    "type": "message",
    "channel": "C1",
    "user": "UHUMAN",
    "ts": "2.000200",
    "thread_ts": "1.000100",
    "text": "hi",
}


def typed(event: dict[str, Any], event_id: str = "Ev1") -> SlackMessage:
    message = message_of(event_id, event)
    assert isinstance(message, SlackMessage)
    return message


def test_a_plain_thread_reply_is_a_reply() -> None:
    reply = thread_reply_of(typed(REPLY))
    assert reply is not None and (reply.channel, reply.thread_ts, reply.user) == ("C1", "1.000100", "UHUMAN")


def test_message_and_app_mention_for_one_message_share_a_dedupe_key() -> None:
    message, mention = inbox_entry(typed(REPLY, "Ev1")), inbox_entry(typed({**REPLY, "type": "app_mention"}, "Ev2"))
    assert message.dedupe_key == mention.dedupe_key == "message:C1:2.000200"
    assert message.queue_key == "thread:C1:1.000100"
    assert (message.event_id, message.kind, mention.kind) == ("Ev1", "message", "app_mention")


def test_the_inbox_keeps_the_typed_message_only() -> None:
    entry = inbox_entry(typed({**REPLY, "blocks": [{"huge": "x" * 1000}], "team": "T1"}))
    assert set(entry.payload) == set(SlackMessage.__dataclass_fields__)
    assert SlackMessage.from_json(entry.payload) == typed(REPLY)


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
