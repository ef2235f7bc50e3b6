"""How a digest is told in Slack: one message in the channel, not a run's root and no thread.

Pure, built from slack-sdk's Block Kit models like the run messages; every
value in a digest came from run records, so it is cleaned, escaped and cut
to Block Kit's limits the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, MarkdownTextObject, PlainTextObject, SectionBlock

from bridge.digest import local_window
from bridge.events import JSONDict
from bridge.notifiers.slack_messages import (
    CONTEXT_ITEM_LIMIT,
    FALLBACK_LIMIT,
    HEADER_LIMIT,
    SECTION_LIMIT,
    clean,
    escape,
    link,
    state_look,
    truncate,
)


def _mrkdwn(text: str, limit: int = SECTION_LIMIT) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(text, limit, mrkdwn=True))


def digest_message(digest: JSONDict) -> tuple[str, list[Block]]:
    """A digest as one channel message: headline, states, failures with links and reasons, agents."""
    name = clean(digest.get("name"))
    runs, cost = int(digest.get("runs") or 0), float(digest.get("cost_usd") or 0)
    start, end = local_window(digest)
    when = f"{start:%a %d %b %H:%M} → {end:%a %d %b %H:%M} {escape(clean(digest.get('timezone') or 'UTC'))}"
    headline = f"*{runs} run{'s' if runs != 1 else ''}* · {when} · ~${cost:,.2f}"
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=truncate(f"📊 Digest: {name}", HEADER_LIMIT), emoji=True)),
        SectionBlock(text=_mrkdwn(headline)),
    ]
    states = _digest_counts(digest.get("by_state"), lambda state: " ".join(state_look(state)))
    if states:
        blocks.append(SectionBlock(text=_mrkdwn(states)))
    failures = _digest_failures(digest)
    if failures:
        blocks.append(SectionBlock(text=_mrkdwn("*Failed*\n" + "\n".join(failures))))
    agents = _digest_counts(digest.get("by_agent"), lambda agent: agent)
    if agents:
        blocks.append(ContextBlock(elements=[_mrkdwn(f"By agent: {agents}", CONTEXT_ITEM_LIMIT * 10)]))
    failed = int(digest.get("failed_total") or 0)
    text = f"📊 Digest {escape(name)}: {runs} run(s), {failed} failed, ~${cost:,.2f}"
    return truncate(text, FALLBACK_LIMIT, mrkdwn=True), blocks


def _digest_counts(counts: object, label: Callable[[str], str]) -> str:
    if not isinstance(counts, dict):
        return ""
    return " · ".join(f"{escape(label(clean(key)))} {int(value)}" for key, value in counts.items())


def _digest_failures(digest: JSONDict) -> list[str]:
    lines = []
    for failure in digest.get("failed") or []:
        title = clean(failure.get("title")).strip() or f"Oz run {clean(failure.get('run_id'))[:8]}"
        status = failure.get("status_message") or {}
        reason = f": {escape(clean(status['message']))}" if isinstance(status, dict) and status.get("message") else ""
        lines.append(f"• {link(failure.get('session_link'), title)}{reason}")
    hidden = int(digest.get("failed_total") or 0) - len(lines)
    if hidden > 0:
        lines.append(f"… and {hidden} more")
    return lines


def preview_lines(digest: JSONDict) -> list[str]:
    """What a Slack target would get for a digest, for ``oz-bridge routes test --event digest``."""
    text, blocks = digest_message(digest)
    shown = json.dumps({"blocks": [block.to_dict() for block in blocks]}, indent=2, ensure_ascii=False)
    return ["one message in the channel (not a run's root, no thread):", f"  text: {text}", shown]
