"""Before any database work: what cannot concern the bridge is dropped, with a reason (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.inbound.prefilter import AsksForRun, Drop, InThread, Keep, StartChannels, concern_of
from bridge.inbound.request import ButtonClick, SlackMessage, message_of
from bridge.notifiers.slack_messages import (
    CANCEL_ACTION_ID,
    GET_FILES_ACTION_ID,
    MUTE_ACTION_ID,
    OPEN_SESSION_ACTION_ID,
    RETRY_ACTION_ID,
    UNMUTE_ACTION_ID,
)
from bridge.notifiers.slack_plans import APPROVE_PLAN_ACTION_ID

REPLY: dict[str, Any] = {
    "type": "message",
    "channel": "C1",
    "user": "UHUMAN",
    "ts": "2.000200",
    "thread_ts": "1.000100",
    "text": "hi",
}


def message(**change: Any) -> SlackMessage:
    event = {k: v for k, v in {**REPLY, **change}.items() if v is not None}
    typed = message_of("Ev1", event)
    assert isinstance(typed, SlackMessage)
    return typed


def click(action_id: str = CANCEL_ACTION_ID, user: str | None = "UHUMAN") -> ButtonClick:
    return ButtonClick("trigger-1", action_id, "run-1", user, "C1", "1.000100", None)


def test_a_persons_reply_in_a_thread_asks_whose_thread_it_is() -> None:
    assert concern_of(message()) == InThread("C1", "1.000100")
    assert concern_of(message(type="app_mention")) == InThread("C1", "1.000100")
    assert concern_of(message(subtype="thread_broadcast")) == InThread("C1", "1.000100")
    assert concern_of(message(subtype="file_share", text=None)) == InThread("C1", "1.000100")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"bot_id": "B1"}, "bot"),
        ({"bot_profile": {"id": "B1"}}, "bot"),
        ({"subtype": "bot_message"}, "bot"),
        ({"subtype": "message_changed"}, "subtype"),
        ({"subtype": "message_deleted"}, "subtype"),
        ({"subtype": "message_replied"}, "subtype"),
        ({"subtype": "channel_join"}, "subtype"),
        ({"user": None}, "incomplete"),
        ({"channel": None}, "incomplete"),
        ({"ts": None}, "incomplete"),
        ({"thread_ts": None}, "not_in_a_thread"),
        ({"thread_ts": "2.000200"}, "not_in_a_thread"),  # the thread's root itself
    ],
)
def test_anything_else_is_dropped_with_its_reason(change: dict[str, Any], reason: str) -> None:
    assert concern_of(message(**change)) == Drop(reason)


def test_clicks_on_the_bridges_buttons_are_kept_for_the_worker_to_check() -> None:
    for action in (CANCEL_ACTION_ID, GET_FILES_ACTION_ID, RETRY_ACTION_ID, MUTE_ACTION_ID, UNMUTE_ACTION_ID):
        assert concern_of(click(action)) == Keep()
    assert concern_of(click(APPROVE_PLAN_ACTION_ID)) == Keep()
    assert concern_of(click(OPEN_SESSION_ACTION_ID)) == Drop("not_our_button")
    assert concern_of(click("someone_elses_button")) == Drop("not_our_button")
    assert concern_of(click(user=None)) == Drop("incomplete")


STARTS = StartChannels.of(["C1"])


def test_a_top_level_mention_where_starting_is_on_asks_for_a_run() -> None:
    top = {"type": "app_mention", "thread_ts": None}
    assert concern_of(message(**top), STARTS) == AsksForRun("C1", "2.000200")
    assert concern_of(message(**top, channel="C2"), StartChannels.of(["*"])) == AsksForRun("C2", "2.000200")


@pytest.mark.parametrize(
    ("change", "starts", "reason"),
    [
        ({"channel": "C2"}, STARTS, "start_not_enabled"),  # not a start channel
        ({}, StartChannels.of([]), "start_not_enabled"),  # starting is off
        ({"channel": "D0DIRECT1"}, StartChannels.of(["*"]), "start_not_enabled"),  # a DM is no channel
        ({"type": "message"}, STARTS, "not_in_a_thread"),  # the message event of the same mention
        ({"bot_id": "B1"}, STARTS, "bot"),
        ({"user": None}, STARTS, "incomplete"),
    ],
)
def test_a_top_level_mention_anywhere_else_is_dropped(
    change: dict[str, Any], starts: StartChannels, reason: str
) -> None:
    assert concern_of(message(**{"type": "app_mention", "thread_ts": None, **change}), starts) == Drop(reason)


def test_a_mention_inside_a_thread_is_a_reply_there_not_a_new_run() -> None:
    assert concern_of(message(type="app_mention"), STARTS) == InThread("C1", "1.000100")
