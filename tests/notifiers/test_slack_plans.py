"""A plan's markdown as Slack mrkdwn: rendered, escaped, cut between blocks; the Sub-runs line."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bridge.notifiers.slack_messages import SECTION_LIMIT, children_line, utf16_len
from bridge.notifiers.slack_plans import APPROVE_PLAN_ACTION_ID, PLAN_BUDGET, plan_message, render_plan


def mrkdwn(markdown: str) -> str:
    return "\n\n".join(render_plan(markdown).sections)


def test_markdown_formatting_becomes_mrkdwn() -> None:
    assert mrkdwn("# Title") == "*Title*"
    assert mrkdwn("**bold**, _it_, ~~gone~~ and `code`") == "*bold*, _it_, ~gone~ and `code`"
    assert mrkdwn("[the docs](https://docs.warp.dev/a?b=1&c=2)") == "<https://docs.warp.dev/a?b=1&amp;c=2|the docs>"
    assert mrkdwn("1. one\n2. two\n   - nested") == "1. one\n2. two\n    • nested"
    assert mrkdwn("> quoted") == "&gt; quoted"
    assert mrkdwn("```python\nx = 1\n```") == "```\nx = 1\n```"
    assert mrkdwn("| a | b |\n|---|---|\n| 1 | 2 |") == "```\na | b\n1 | 2\n```"


def test_text_from_the_plan_can_neither_mention_nor_link_anyone() -> None:
    text = mrkdwn("Ping <!channel> and <@U123> & [x](javascript:alert(1)) [y](https://a.example/p|q>r)")
    assert "<!channel>" not in text and "<@U123>" not in text and "&amp;" in text
    assert "<javascript" not in text  # only http(s) targets become links
    assert "<https://a.example/p%7Cq%3Er|y>" in text  # a URL cannot end the link early or smuggle a label


def test_a_long_plan_is_cut_between_blocks_and_says_so() -> None:
    plan = "\n\n".join(f"Step {i}: " + "word " * 40 for i in range(400))
    rendered = render_plan(plan)
    assert rendered.cut
    assert all(utf16_len(section) <= SECTION_LIMIT for section in rendered.sections)
    assert sum(utf16_len(s) for s in rendered.sections) <= PLAN_BUDGET
    assert all(s.split("\n\n")[-1].endswith("word ".strip()) for s in rendered.sections)  # no paragraph cut in two
    text, blocks = plan_message("Big plan", plan, "https://app.warp.dev/drive/notebook/n1", "run-1")
    dumped = str([b.to_dict() for b in blocks])
    assert "The plan is longer than a Slack message" in dumped and "app.warp.dev/drive/notebook/n1" in dumped
    assert APPROVE_PLAN_ACTION_ID in dumped and len(text) <= 4000


def test_a_code_block_longer_than_a_section_stays_fenced_in_each_part() -> None:
    rendered = render_plan("```\n" + "line of code\n" * 600 + "```")
    assert len(rendered.sections) > 1
    assert all(s.startswith("```\n") and s.endswith("\n```") for s in rendered.sections)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=3000))
def test_any_markdown_gives_blocks_slack_accepts(markdown: str) -> None:
    _, blocks = plan_message("Plan", markdown, "https://app.warp.dev/drive/n", "run-1")
    for block in blocks:
        assert Block.parse(block.to_dict()) is not None
        block.validate_json()


def test_the_sub_runs_line_counts_outcomes_first() -> None:
    assert children_line({}) is None
    line = children_line({"a": "SUCCEEDED", "b": "INPROGRESS", "c": "SUCCEEDED"})
    assert line == "Sub-runs: 2 ✅ 1 🏃"
    assert children_line({"a": "FAILED", "b": "QUEUED", "c": "PENDING", "d": "WEIRD"}) == "Sub-runs: 1 ❌ 2 ⏳ 1 🔄"
