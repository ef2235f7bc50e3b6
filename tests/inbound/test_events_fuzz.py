"""Whatever reaches ``POST /slack/events``, the answer is never a 5xx and nothing blows up later."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.store import inbox
from tests.inbound.harness import Harness
from tests.inbound.harness import sign_raw as sign

HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain", "", "application/json; charset=utf-8"]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
SLACK_KEYS = st.sampled_from(
    ["type", "subtype", "channel", "user", "ts", "thread_ts", "text", "bot_id", "event_id", "actions", "user"]
)


def event_like(root_ts: str | None) -> st.SearchStrategy[dict[str, Any]]:
    """Events shaped enough like a thread reply to get past the cheap checks, and sometimes into a real thread."""
    thread_ts = st.sampled_from([root_ts]) if root_ts else st.text(max_size=12)
    return st.fixed_dictionaries(
        {
            "type": st.sampled_from(["message", "app_mention", "reaction_added"]),
            "channel": st.sampled_from(["C0TESTCHAN1", "C0OTHER"]),
            "user": st.sampled_from(["UHUMAN", "UBOT", ""]),
            "ts": st.text(max_size=12),
            "thread_ts": thread_ts,
            "text": st.text(max_size=60) | st.sampled_from(["/plan ", "<@UBOT>", "/orchestrate  x", "&amp;lt;"]),
        },
        optional={"subtype": st.sampled_from(["thread_broadcast", "file_share", "message_changed", None])},
    )


def bodies(root_ts: str) -> st.SearchStrategy[tuple[bytes, str]]:
    garbage = st.tuples(st.binary(max_size=512), CONTENT_TYPES)
    json_body = st.tuples(
        st.dictionaries(SLACK_KEYS, JSON_VALUES, max_size=5).map(lambda d: json.dumps(d).encode()),
        st.just("application/json"),
    )
    events = st.tuples(
        st.builds(
            lambda event, event_id: json.dumps({"type": "event_callback", "event_id": event_id, "event": event}),
            event_like(root_ts) | event_like(None),
            st.text(min_size=1, max_size=12),
        ).map(str.encode),
        st.just("application/json"),
    )
    forms = st.tuples(
        st.one_of(
            st.dictionaries(SLACK_KEYS, JSON_VALUES, max_size=5).map(lambda d: {"type": "block_actions", **d}),
            st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4),
        ).map(lambda payload: urlencode({"payload": json.dumps(payload)}).encode()),
        st.just("application/x-www-form-urlencoded"),
    )
    return st.one_of(garbage, json_body, events, forms)


@st.composite
def requests(draw: st.DrawFn, root_ts: str) -> tuple[bytes, dict[str, str]]:
    body, content_type = draw(bodies(root_ts))
    headers = {"Content-Type": content_type}
    how = draw(st.sampled_from(["valid", "valid", "valid", "stale", "random", "none"]))
    if how == "valid":
        headers.update(sign(body))
    elif how == "stale":
        headers.update(sign(body, timestamp=int(time.time()) - 3600))
    elif how == "random":
        headers["X-Slack-Request-Timestamp"] = draw(HEADER_TEXT)
        headers["X-Slack-Signature"] = draw(HEADER_TEXT)
    for name in draw(st.lists(st.sampled_from(["X-Slack-Retry-Num", "X-Forwarded-For", "Accept"]), max_size=2)):
        headers[name] = draw(HEADER_TEXT)
    return body, headers


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_arbitrary_requests_never_get_a_5xx_nor_break_the_worker(harness: Harness, data: st.DataObject) -> None:
    if not hasattr(harness, "fuzz_thread"):
        harness.fuzz_thread = await harness.thread()  # type: ignore[attr-defined]
    thread = harness.fuzz_thread  # type: ignore[attr-defined]
    body, headers = data.draw(requests(thread.root_ts))

    response = await harness.client.post("/slack/events", data=body, headers=headers)
    await response.read()
    assert response.status < 500, (response.status, body, headers)

    await harness.settle()
    async with harness.engine.connect() as conn:
        failed = await inbox.all_rows(conn, [inbox.FAILED])
    assert failed == [], [row.last_error for row in failed]
