"""A plan's markdown as a Slack message: rendered to mrkdwn, cut safely, with ``Approve plan``.

Why mrkdwn and not Slack's ``markdown`` block: the plan is text from outside,
and mrkdwn lets every character of it be escaped (no ``<!channel>``, no
mentions, no forged links); it renders tables and rules the ``markdown`` block
does not support; and its limits (3,000 per section) are documented, where the
``markdown`` block's cumulative limit is not. markdown-it-py parses; this module
only renders its syntax tree. Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ContextBlock, MarkdownTextObject, SectionBlock

from bridge.notifiers.slack_messages import FALLBACK_LIMIT, SECTION_LIMIT, clean, escape, link, truncate, utf16_len

APPROVE_PLAN_ACTION_ID = "oz_approve_plan"
PLAN_BUDGET = 9000  # mrkdwn characters of plan per message: room for the rest, well under Slack's limits
_parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_INDENT = "    "


@dataclass(frozen=True)
class RenderedPlan:
    sections: list[str]  # each within SECTION_LIMIT
    cut: bool  # some of the plan did not fit


# ---- inline --------------------------------------------------------------------------------------


def _inline(node: SyntaxTreeNode) -> str:
    return "".join(_inline_one(child) for child in node.children)


def _wrap(mark: str, inner: str) -> str:
    # Slack ignores a marker around spaces ("* x *"): keep the spaces outside it.
    stripped = inner.strip()
    if not stripped:
        return inner
    lead, trail = inner[: len(inner) - len(inner.lstrip())], inner[len(inner.rstrip()) :]
    return f"{lead}{mark}{stripped}{mark}{trail}"


def _inline_one(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind == "text" or kind == "html_inline":
        return escape(node.content)
    if kind in ("softbreak", "hardbreak"):
        return "\n"
    if kind == "code_inline":
        return "`" + escape(node.content.replace("`", "'")) + "`"
    if kind == "strong":
        return _wrap("*", _inline(node))
    if kind == "em":
        return _wrap("_", _inline(node))
    if kind == "s":
        return _wrap("~", _inline(node))
    if kind == "link":
        label = _plain(node) or str(node.attrs.get("href", ""))
        return link(node.attrs.get("href"), label)
    if kind == "image":
        return link(node.attrs.get("src"), "image: " + (node.content or _plain(node) or "picture"))
    return _inline(node) if node.children else escape(node.content)


def _plain(node: SyntaxTreeNode) -> str:
    """The text of an inline subtree without formatting (a link's label is escaped by ``link``)."""
    if node.type in ("text", "code_inline", "html_inline"):
        return node.content
    if node.type in ("softbreak", "hardbreak"):
        return " "
    return "".join(_plain(child) for child in node.children)


# ---- blocks --------------------------------------------------------------------------------------


def _code(text: str) -> str:
    return "```\n" + escape(text.rstrip("\n")) + "\n```"


def _block(node: SyntaxTreeNode, depth: int = 0) -> str:
    kind = node.type
    if kind == "paragraph":
        return _inline(node.children[0]) if node.children else ""
    if kind == "heading":
        return _wrap("*", _inline(node.children[0])) if node.children else ""
    if kind in ("bullet_list", "ordered_list"):
        return "\n".join(_list_items(node, depth))
    if kind == "blockquote":
        inner = "\n".join(_block(child, depth) for child in node.children)
        return "\n".join("&gt; " + line for line in inner.split("\n"))
    if kind in ("fence", "code_block"):
        return _code(node.content)
    if kind == "hr":
        return "──────────"
    if kind == "table":
        return _code(_table_text(node))
    if kind == "html_block":
        return escape(node.content.strip())
    return "\n".join(_block(child, depth) for child in node.children)


def _list_items(node: SyntaxTreeNode, depth: int) -> list[str]:
    start = int(node.attrs.get("start", 1) or 1)
    items = []
    for number, item in enumerate(node.children, start=start):
        marker = f"{number}." if node.type == "ordered_list" else "•"
        parts = [_block(child, depth + 1) for child in item.children]
        body = "\n".join(p for p in parts if p)
        lines = body.split("\n") if body else [""]
        head = f"{_INDENT * depth}{marker} {lines[0]}"
        # Nested lists carry their own indentation; other continuation lines line up with the text.
        rest = [line if line.startswith(_INDENT) else f"{_INDENT * depth}  {line}" for line in lines[1:]]
        items.append("\n".join([head, *rest]))
    return items


def _table_text(node: SyntaxTreeNode) -> str:
    rows = [row for section in node.children for row in section.children]
    return "\n".join(" | ".join(_plain(cell).strip() for cell in row.children) for row in rows)


def _pieces(markdown: str) -> list[tuple[str, str]]:
    """(separator, mrkdwn) per cuttable piece: top-level blocks, and each item of a top-level list."""
    root = SyntaxTreeNode(_parser.parse(markdown))
    pieces: list[tuple[str, str]] = []
    for node in root.children:
        if node.type in ("bullet_list", "ordered_list"):
            items = _list_items(node, 0)
            pieces += [("\n\n" if i == 0 else "\n", item) for i, item in enumerate(items)]
        else:
            text = _block(node)
            if text:
                pieces.append(("\n\n", text))
    return pieces


# ---- cutting -------------------------------------------------------------------------------------


def _split_long(text: str) -> list[str]:
    """A piece longer than one section, in section-sized parts; code stays fenced in each part."""
    fenced = text.startswith("```\n") and text.endswith("\n```")
    body = text[4:-4] if fenced else text
    budget = SECTION_LIMIT - (8 if fenced else 0)
    parts: list[str] = []
    current = ""
    for line in body.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if utf16_len(candidate) <= budget:
            current = candidate
            continue
        if current:
            parts.append(current)
        current = truncate(line, budget, mrkdwn=True)
    if current:
        parts.append(current)
    return [f"```\n{p}\n```" if fenced else p for p in parts]


def render_plan(markdown: str, budget: int = PLAN_BUDGET) -> RenderedPlan:
    """The plan as mrkdwn sections within ``budget`` characters in all, cut between blocks."""
    sections: list[str] = []
    current, used, cut = "", 0, False
    for separator, piece in _pieces(clean(markdown)):
        for part in [piece] if utf16_len(piece) <= SECTION_LIMIT else _split_long(piece):
            size = utf16_len(part) + len(separator)
            if used + size > budget:
                cut = True
                break
            used += size
            joined = f"{current}{separator}{part}" if current else part
            if utf16_len(joined) <= SECTION_LIMIT:
                current = joined
            else:
                sections.append(current)
                current = part
            separator = "\n"
        if cut:
            break
    if current:
        sections.append(current)
    return RenderedPlan(sections, cut)


# ---- the message ---------------------------------------------------------------------------------


def plan_message(title: str, markdown: str, url: object, run_id: str) -> tuple[str, list[Block]]:
    """Fallback text and blocks of a plan posted in the run's thread."""
    rendered = render_plan(markdown)
    heading = f"📝 *Plan:* {escape(clean(title).strip() or 'Plan')}"
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=truncate(heading, SECTION_LIMIT, mrkdwn=True)))]
    blocks += [SectionBlock(text=MarkdownTextObject(text=section)) for section in rendered.sections]
    whole = link(url, "Open the whole plan")
    if rendered.cut or not rendered.sections:
        note = f"The plan is longer than a Slack message: {whole}." if rendered.sections else whole
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=note)]))
    elif whole != escape("Open the whole plan"):
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=whole)]))
    # The value is only a hint: a click is resolved from the stored placement of the message.
    approve = ButtonElement(text="Approve plan", action_id=APPROVE_PLAN_ACTION_ID, value=run_id[:2000], style="primary")
    blocks.append(ActionsBlock(elements=[approve]))
    text = heading + ("\n" + rendered.sections[0] if rendered.sections else "")
    return truncate(text, FALLBACK_LIMIT, mrkdwn=True), blocks
