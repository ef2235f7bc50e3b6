"""Checks across sections that a single field validator cannot see."""

from __future__ import annotations

from fnmatch import fnmatchcase

from bridge.events import RUN_COST_EXCEEDED, RUN_STILL_BLOCKED, RUN_STUCK
from bridge.routing import pattern_problem
from bridge.settings import Settings, SlackTarget, item_where


def disabled_targets(settings: Settings) -> list[str]:
    """Slack targets without SLACK_BOT_TOKEN: an error to check-config, switched off by run."""
    if settings.slack.bot_token is not None:
        return []
    return [name for name, target in settings.targets.items() if isinstance(target, SlackTarget)]


def problems(settings: Settings, *, allow_disabled: bool = False) -> list[str]:
    """Every cross-reference problem, one line each, naming the key."""
    found: list[str] = []
    defined = sorted(settings.targets)
    found += [
        f"targets.{name}: names starting with @ are reserved for built-in targets (@slack-thread)"
        for name in defined
        if name.startswith("@")
    ]
    seen_names: set[str] = set()
    for index, route in enumerate(settings.routes):
        where = item_where("routes", index, route.name)
        if route.name in seen_names:
            found.append(f"{where}.name: {route.name!r} is used by an earlier route; route names must be unique")
        seen_names.add(route.name)
        for position, pattern in enumerate(route.events):
            problem = pattern_problem(pattern)
            if problem:
                found.append(f"{where}.events[{position}]: {problem}")
        found += _unknown_targets(settings, where, route.to)
    seen_names.clear()
    for index, digest in enumerate(settings.digests):
        where = item_where("digests", index, digest.name)
        if digest.name in seen_names:
            found.append(f"{where}.name: {digest.name!r} is used by an earlier digest; digest names must be unique")
        seen_names.add(digest.name)
        found += _unknown_targets(settings, where, digest.to)
        found += _creator_dms(settings, where, digest.to)
    if not allow_disabled:
        found += [
            f"targets.{name}: a slack target needs SLACK_BOT_TOKEN to be set" for name in disabled_targets(settings)
        ]
    return found


def _unknown_targets(settings: Settings, where: str, names: list[str]) -> list[str]:
    known = ", ".join(sorted(settings.targets)) or "none are defined"
    return [
        f"{where}.to[{position}]: unknown target {name!r}; defined targets: {known}"
        for position, name in enumerate(names)
        if name not in settings.targets
    ]


def _creator_dms(settings: Settings, where: str, names: list[str]) -> list[str]:
    """A digest tells of many runs at once: it has no creator to send a DM to."""
    found = []
    for position, name in enumerate(names):
        target = settings.targets.get(name)
        if isinstance(target, SlackTarget) and target.channel == "@creator":
            found.append(
                f'{where}.to[{position}]: target {name!r} is a DM to each run\'s creator (channel: "@creator"), '
                "but a digest has no creator; send it to a channel"
            )
    return found


def warnings(settings: Settings) -> list[str]:
    """Things that are allowed but probably not meant."""
    used = {target for route in settings.routes for target in route.to}
    used |= {target for digest in settings.digests for target in digest.to}
    notes = [f"targets.{name}: no route sends to it" for name in settings.targets if name not in used]
    if not settings.routes:
        notes.append("routes: none are defined, so no event will be delivered anywhere")
    if settings.slack.bot_token is None:
        for key, value in (
            ("SLACK_SIGNING_SECRET", settings.slack.signing_secret),
            ("SLACK_APP_TOKEN", settings.slack.app_token),
        ):
            if value is not None:
                notes.append(f"slack: {key} is set but SLACK_BOT_TOKEN is not, so inbound Slack stays off")
    slack = settings.slack
    if slack.start.channels and (slack.bot_token is None or (slack.signing_secret is None and slack.app_token is None)):
        notes.append(
            "slack.start.channels: runs are started from Slack messages, which need SLACK_BOT_TOKEN and "
            "SLACK_SIGNING_SECRET or SLACK_APP_TOKEN; without them no run will be started"
        )
    if settings.poll.lookback < settings.poll.interval:
        notes.append("poll.lookback: shorter than poll.interval; late-visible updates may be missed")
    return notes + _unrouted_time_events(settings)


def _unrouted_time_events(settings: Settings) -> list[str]:
    """A reminder or budget that is switched on but that no route takes is probably a forgotten route."""
    switched_on = (
        ("reminders.blocked_every", settings.reminders.blocked_every, RUN_STILL_BLOCKED),
        ("reminders.stuck_after", settings.reminders.stuck_after, RUN_STUCK),
        ("budgets.run_usd", settings.budgets.run_usd, RUN_COST_EXCEEDED),
    )
    patterns = [pattern for route in settings.routes for pattern in route.events]
    return [
        f"{key}: set, but no route's events match {kind}, so it is told nowhere"
        for key, value, kind in switched_on
        if value and not any(fnmatchcase(kind, pattern) for pattern in patterns)
    ]
