"""How a run is told in Slack: the root message and the thread replies, as Block Kit.

Pure functions of the run/event, built only from slack-sdk's Block Kit models.
Run fields are user text: it is cleaned (no lone surrogates or control
characters), escaped for mrkdwn and cut to Block Kit's limits by UTF-16 length
(what Slack counts) without splitting a character, an ``&amp;`` or a link.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    LinkButtonElement,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.metadata import Metadata

from bridge.events import (
    CANCELLABLE_STATES,
    RUN_COST_EXCEEDED,
    RUN_STILL_BLOCKED,
    RUN_STUCK,
    TERMINAL_STATES,
    TIME_EVENT_TYPES,
    Event,
    JSONDict,
    cost_figures,
)
from bridge.schedule import quiet_for, span_text

CANCEL_ACTION_ID = "oz_cancel_run"
GET_FILES_ACTION_ID = "oz_get_files"
RETRY_ACTION_ID = "oz_retry_run"
MUTE_ACTION_ID = "oz_mute_run"
UNMUTE_ACTION_ID = "oz_unmute_run"
RETRYABLE_STATES = frozenset({"FAILED", "ERROR"})
OPEN_SESSION_ACTION_ID = "oz_open_session"  # a link button; Slack still sends its click, to be ignored
ROOT_EVENT_TYPE = "oz_run"  # message metadata type that marks a root, carrying {"run_id": …}
BROADCAST_EVENTS = frozenset({"run.failed", "run.errored", "run.blocked"})

SECTION_LIMIT, HEADER_LIMIT, BUTTON_LIMIT, TEXT_LIMIT, URL_LIMIT, VALUE_LIMIT = 3000, 150, 75, 40000, 3000, 2000
# The fallback ``text`` (notifications, screen readers): Slack recommends at most 4,000 characters.
FALLBACK_LIMIT = 4000
PROMPT_EXCERPT = 500
CONTEXT_ITEM_LIMIT = 200
PROBLEM_STATES = frozenset({"FAILED", "ERROR", "BLOCKED"})

_LOOKS: dict[str, tuple[str, str]] = {
    "QUEUED": ("⏳", "Queued"),
    "PENDING": ("⏳", "Pending"),
    "CLAIMED": ("📥", "Claimed"),
    "INPROGRESS": ("🏃", "In progress"),
    "SUCCEEDED": ("✅", "Succeeded"),
    "FAILED": ("❌", "Failed"),
    "ERROR": ("💥", "Error"),
    "BLOCKED": ("✋", "Blocked: waiting for input"),
    "CANCELLED": ("🚫", "Cancelled"),
}
_SUMMARY_ORDER = ("SUCCEEDED", "FAILED", "ERROR", "CANCELLED", "BLOCKED", "INPROGRESS", "CLAIMED", "QUEUED")
_ARTIFACT_LOOKS: dict[str, tuple[str, str]] = {
    "PULL_REQUEST": ("🔀", "Pull request"),
    "PLAN": ("📝", "Plan"),
    "SCREENSHOT": ("🖼️", "Screenshot"),
    "FILE": ("📎", "File"),
    "EXTERNAL_REFERENCE": ("🔗", "Reference"),
}
_UNSAFE = re.compile(r"[\ud800-\udfff]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_CHANGE_REQUEST = re.compile(r"/([^/]+)/([^/]+?)(?:/-)?/(?:pull|merge_requests)/(\d+)")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")
ANSWER_HINT = "Reply in this thread to answer the agent; start with `/plan ` or `/orchestrate ` to switch mode."


# ---- text ------------------------------------------------------------------------------------------


def clean(value: object) -> str:
    """Text safe to send: lone surrogates and control characters (JSON would refuse or Slack drop) replaced."""
    return _UNSAFE.sub("\ufffd", "" if value is None else str(value))


def escape(text: str) -> str:
    """mrkdwn control characters in user text, so it can't link, mention or format."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def truncate(text: str, limit: int, *, mrkdwn: bool = False) -> str:
    """``text`` within ``limit`` UTF-16 units, ending with "…" when cut."""
    if len(text) * 2 <= limit or utf16_len(text) <= limit:
        return text
    budget, cut = limit - 1, 0
    for index, char in enumerate(text):
        budget -= 2 if ord(char) > 0xFFFF else 1
        if budget < 0:
            break
        cut = index + 1
    head = text[:cut]
    if mrkdwn:
        # Half an entity (&am) or half a link (<https://…) would show as garbage or break the message.
        for opener, closer in (("&", ";"), ("<", ">")):
            start = head.rfind(opener)
            if start != -1 and closer not in head[start:]:
                head = head[:start]
    return head + "…"


def _mrkdwn(text: str, limit: int = SECTION_LIMIT) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(text, limit, mrkdwn=True))


def _safe_url(value: object, limit: int = URL_LIMIT) -> str | None:
    url = clean(value).strip()
    ok = url.startswith(("https://", "http://")) and len(url) <= limit and not re.search(r"\s", url)
    return url if ok else None


def link(url: object, label: str) -> str:
    """A mrkdwn link to ``url`` (when it is a plain http(s) URL), else the label alone."""
    safe = _safe_url(url)
    if safe is None:
        return escape(label)
    target = safe.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"<{target}|{escape(label)}>"


# ---- run facts -------------------------------------------------------------------------------------


def state_look(state: str) -> tuple[str, str]:
    return _LOOKS.get(state, ("🔄", clean(state).title() or "Unknown"))


def format_duration(value: object) -> str | None:
    """An ISO 8601 duration (``PT2M30S``) as ``2m 30s``."""
    match = _DURATION.match(str(value or ""))
    if not match or not any(match.groups()):
        return None
    days, hours, minutes = (int(g or 0) for g in match.groups()[:3])
    seconds = float(match.group(4) or 0)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (int(seconds), "s")) if n]
    return " ".join(parts) or ("<1s" if seconds else "0s")


def format_cost(run: JSONDict) -> str | None:
    """The run's approximate cost in US dollars, the sum of request_usage's ``*_usd`` figures."""
    figures = cost_figures(run)
    if not figures:
        return None
    total = float(sum(figures))
    return "<$0.01" if 0 < total < 0.005 else f"~${total:,.2f}"


def _title(run: JSONDict) -> str:
    return clean(run.get("title")).strip() or f"Oz run {clean(run.get('run_id'))[:8]}"


def _creator(run: JSONDict) -> str | None:
    creator = run.get("creator") or {}
    name = creator.get("display_name") or creator.get("email") or creator.get("uid")
    return clean(name) if name else None


def _problem(run: JSONDict) -> str | None:
    """The status message (and error code) of a failed, errored or blocked run, as mrkdwn."""
    status = run.get("status_message") or {}
    if run.get("state") not in PROBLEM_STATES or not status.get("message"):
        return None
    code = clean(status.get("error_code")).replace("`", "")
    return escape(clean(status["message"])) + (f" `{escape(code)}`" if code else "")


def _artifacts(run: JSONDict, kind: str) -> list[JSONDict]:
    return [a.get("data") or {} for a in run.get("artifacts") or [] if a.get("artifact_type") == kind]


def _change_request_label(data: JSONDict) -> str:
    match = _CHANGE_REQUEST.search(clean(data.get("url")))
    if match:
        return f"{match.group(1)}/{match.group(2)}#{match.group(3)}"
    return clean(data.get("branch") or data.get("url") or "pull request")


def _artifact_link(kind: str, data: JSONDict) -> str:
    if kind == "PULL_REQUEST":
        return link(data.get("url"), _change_request_label(data))
    if kind == "FILE":
        return escape(clean(data.get("title") or data.get("filename") or data.get("filepath") or "file"))
    label = data.get("title") or data.get("description") or data.get("reference_type") or data.get("url") or kind
    return link(data.get("url"), clean(label))


def has_files(run: JSONDict) -> bool:
    """The run left files to fetch: FILE artifacts are the signal a listing can see."""
    return bool(_artifacts(run, "FILE"))


# ---- the root message ------------------------------------------------------------------------------


def root_metadata(run_id: str) -> Metadata:
    """Marks a message as the root of ``run_id``, so a crashed post can be found again in history."""
    return Metadata(event_type=ROOT_EVENT_TYPE, event_payload={"run_id": run_id})


def children_line(states: Mapping[str, str]) -> str | None:
    """``Sub-runs: 2 ✅ 1 🏃`` from child run id → state; ``None`` without children."""
    if not states:
        return None
    counts = Counter(state_look(clean(state))[0] for state in states.values())
    # Outcomes first, then what is still going on, as in "Sub-runs: 2 ✅ 1 🏃".
    order = [_LOOKS[s][0] for s in _SUMMARY_ORDER]
    ranked = sorted(counts.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order))
    return "Sub-runs: " + " ".join(f"{count} {emoji}" for emoji, count in ranked)


def root_message(
    run: JSONDict,
    *,
    channel_has_files: bool = False,
    children: Mapping[str, str] | None = None,
    muted: bool = False,
) -> tuple[str, list[Block]]:
    """Fallback text and blocks of the status message, showing the run's current state.

    ``Get files`` shows on ended runs when ``channel_has_files`` (the caller knows
    handoff attachments exist) or the run has FILE artifacts. ``children`` (child
    run id → state) adds the ``Sub-runs`` line; ``muted`` picks ``Unmute`` over ``Mute``.
    """
    state = clean(run.get("state"))
    emoji, label = state_look(state)
    title, problem = _title(run), _problem(run)
    status = f"{emoji} *{escape(label)}*" + (f"\n{problem}" if problem else "")
    summary = children_line(children or {})
    if summary:
        status += f"\n{summary}"
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=truncate(title, HEADER_LIMIT), emoji=False)),
        SectionBlock(text=_mrkdwn(status)),
    ]
    prompt = truncate(clean(run.get("prompt")).strip(), PROMPT_EXCERPT)
    if prompt:
        blocks.append(SectionBlock(text=_mrkdwn(">" + escape(prompt).replace("\n", "\n>"))))
    facts = _facts(run)
    if facts:
        blocks.append(ContextBlock(elements=[_mrkdwn(fact, CONTEXT_ITEM_LIMIT) for fact in facts]))
    links = _links(run)
    if links:
        blocks.append(SectionBlock(text=_mrkdwn("\n".join(links))))
    buttons = _buttons(run, state, title, channel_has_files or has_files(run), muted)
    if buttons:
        blocks.append(ActionsBlock(elements=buttons))
    text = f"{emoji} {label}: {escape(title)}" + (f": {problem}" if problem else "")
    return truncate(text, FALLBACK_LIMIT, mrkdwn=True), blocks


def _facts(run: JSONDict) -> list[str]:
    agent = (run.get("agent_config") or {}).get("name")
    facts = [
        ("Source", run.get("source") and clean(run["source"])),
        ("Creator", _creator(run)),
        ("Agent", agent and clean(agent)),
        ("Run time", format_duration(run.get("run_time"))),
        ("Cost", format_cost(run)),
    ]
    return [f"{name}: *{escape(value)}*" for name, value in facts if value]


def _links(run: JSONDict) -> list[str]:
    lines = []
    for kind, heading in (("PULL_REQUEST", "Pull requests"), ("PLAN", "Plans"), ("EXTERNAL_REFERENCE", "Links")):
        items = list(dict.fromkeys(_artifact_link(kind, data) for data in _artifacts(run, kind)))
        if items:
            lines.append(f"*{heading}:* " + ", ".join(items))
    return lines


def is_retryable(run: JSONDict) -> bool:
    """Failed or errored, and the API did not say a new run would fail the same way."""
    status = run.get("status_message")
    retryable = status.get("retryable") if isinstance(status, dict) else None
    return run.get("state") in RETRYABLE_STATES and retryable is not False


def _buttons(
    run: JSONDict, state: str, title: str, files: bool, muted: bool
) -> list[ButtonElement | LinkButtonElement]:
    buttons: list[ButtonElement | LinkButtonElement] = []
    session = _safe_url(run.get("session_link"))
    if session:
        buttons.append(LinkButtonElement(text="Open session", url=session, action_id=OPEN_SESSION_ACTION_ID))
    run_id = clean(run.get("run_id"))
    if not run_id or len(run_id) > VALUE_LIMIT:
        return buttons
    # The API refuses to cancel some run types (GitHub Action, local): no button that can only fail.
    if state in CANCELLABLE_STATES and run.get("is_run_type_cancellable") is not False:
        buttons.append(_cancel_button(run_id, title))
    if is_retryable(run):
        buttons.append(ButtonElement(text="Retry", action_id=RETRY_ACTION_ID, value=run_id, style="primary"))
    if state in TERMINAL_STATES and files:
        buttons.append(ButtonElement(text="Get files", action_id=GET_FILES_ACTION_ID, value=run_id))
    # Button values are hints only: a click is resolved from the stored placement of its message.
    if muted:
        buttons.append(ButtonElement(text="Unmute", action_id=UNMUTE_ACTION_ID, value=run_id))
    else:
        buttons.append(ButtonElement(text="Mute", action_id=MUTE_ACTION_ID, value=run_id))
    return buttons


def _cancel_button(run_id: str, title: str) -> ButtonElement:
    confirm = ConfirmObject(
        title="Cancel this run?",
        text=truncate(f"The agent stops working on “{escape(title)}”.", 300, mrkdwn=True),
        confirm="Cancel run",
        deny="Keep it running",
        style="danger",
    )
    return ButtonElement(text="Cancel run", action_id=CANCEL_ACTION_ID, value=run_id, style="danger", confirm=confirm)


# ---- thread replies --------------------------------------------------------------------------------


def is_broadcast(event: Event) -> bool:
    """Failures and blocks are also shown in the channel, not only in the thread."""
    return event.type in BROADCAST_EVENTS


# Shown in full in the thread even when they are the event the status message was posted for.
_SHOWN_IN_THREAD = frozenset({"artifact.plan", "artifact.screenshot", *TIME_EVENT_TYPES})


def root_tells(event: Event) -> bool:
    """Whether a status message posted for ``event`` already says it all; plans, screenshots and
    events from the clock also need their reply."""
    return event.type not in _SHOWN_IN_THREAD


def thread_reply(event: Event, creator_user: str | None = None) -> tuple[str, list[Block]]:
    """What changed (or that time has passed), as one reply in the run's thread.

    ``creator_user``: the creator's Slack user id when known by other means than the run's
    ``slack_user`` metadata (their email); a reminder mentions them.
    """
    if event.is_artifact:
        lines = _artifact_lines(event)
    elif event.type in TIME_EVENT_TYPES:
        lines = _time_lines(event, creator_user)
    else:
        lines = _state_lines(event)
    text = "\n".join(lines)
    blocks: list[Block] = [SectionBlock(text=_mrkdwn(text))]
    if event.type in ("run.blocked", RUN_STILL_BLOCKED):
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=ANSWER_HINT)]))
    return truncate(text, FALLBACK_LIMIT, mrkdwn=True), blocks


def creator_mention(run: JSONDict, creator_user: str | None = None) -> str | None:
    """``<@U…>`` for the run's creator when their Slack user is known: runs started from Slack
    carry it in their metadata, others by their email (``creator_user``)."""
    metadata = run.get("metadata")
    user = metadata.get("slack_user") if isinstance(metadata, dict) else None
    user = user if isinstance(user, str) and _SLACK_USER.match(user) else creator_user
    # Metadata is anyone's text: only a well-formed user id may become a mention.
    return f"<@{user}>" if isinstance(user, str) and _SLACK_USER.match(user) else None


def _time_lines(event: Event, creator_user: str | None = None) -> list[str]:
    run, quiet = event.fields, quiet_for(event)
    span = f" ({'blocked' if event.type == RUN_STILL_BLOCKED else 'quiet'} {span_text(quiet)})" if quiet else ""
    if event.type == RUN_STILL_BLOCKED:
        lines = [f"✋ *Still waiting for input*{span}"]
        problem = _problem(run)
        lines += [problem] if problem else []
        mention = creator_mention(run, creator_user)
        lines += [f"{mention} the agent is waiting for your answer."] if mention else []
        return lines
    if event.type == RUN_STUCK:
        label = state_look(event.state)[1].lower()
        return [f"⏰ *No update for {span_text(quiet or 0)}*: still {escape(label)}"]
    if event.type == RUN_COST_EXCEEDED:
        return [f"💸 *Over the cost budget*: {escape(format_cost(run) or '$0')} so far"]
    return [f"⏱️ {escape(event.type)}"]


def _state_lines(event: Event) -> list[str]:
    run = event.fields
    if event.type == "run.created":
        return [f"🆕 *Run created* by {escape(_creator(run) or 'someone')}"]
    emoji, label = state_look(event.state)
    line = f"{emoji} *{escape(label)}*"
    if event.previous_state:
        line += f" (was {escape(state_look(event.previous_state)[1].lower())})"
    lines = [line]
    problem = _problem(run)
    if problem:
        lines.append(problem)
    if event.state in TERMINAL_STATES:
        summary = [fact for fact in (format_duration(run.get("run_time")), format_cost(run)) if fact]
        if summary:
            lines.append("Ran " + " · ".join(escape(fact) for fact in summary))
    return lines


def _artifact_lines(event: Event) -> list[str]:
    artifact = event.artifact or {}
    kind = clean(artifact.get("artifact_type")).upper()
    data: JSONDict = artifact.get("data") or {}
    emoji, label = _ARTIFACT_LOOKS.get(kind, ("📦", f"Artifact {escape(kind.lower())}"))
    lines = [f"{emoji} *{label}:* {_artifact_link(kind, data)}"]
    if kind == "PULL_REQUEST" and data.get("branch"):
        lines.append(f"Branch `{escape(clean(data['branch']).replace('`', ''))}`")
    if kind in ("FILE", "SCREENSHOT") and data.get("description"):
        lines.append(escape(clean(data["description"])))
    return lines


# ---- preview ---------------------------------------------------------------------------------------


def preview_lines(event: Event) -> list[str]:
    """What Slack would get for ``event``, for ``oz-bridge routes test``."""
    root_text, root_blocks = root_message(event.fields)
    reply_text, reply_blocks = thread_reply(event)
    broadcast = " (also broadcast to the channel)" if is_broadcast(event) else ""
    return [
        "root message (posted for the run's first event, updated in place by every later one):",
        f"  text: {root_text}",
        _blocks_json(root_blocks),
        f"thread reply for a later event{broadcast}:",
        f"  text: {reply_text}",
        _blocks_json(reply_blocks),
    ]


def _blocks_json(blocks: list[Block]) -> str:
    payload: list[dict[str, Any]] = [block.to_dict() for block in blocks]
    return json.dumps({"blocks": payload}, indent=2, ensure_ascii=False)
