"""Which notifier serves which target type: the one place that maps config to code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp

from bridge.notifiers.base import Notifier
from bridge.notifiers.console import ConsoleNotifier
from bridge.notifiers.webhook import WebhookNotifier
from bridge.settings import ConsoleTarget, Settings, SlackTarget, WebhookTarget

if TYPE_CHECKING:
    from bridge.notifiers.slack import SlackContext


@dataclass
class NotifierDeps:
    """Shared resources notifiers may need, built once by the composition root."""

    http: aiohttp.ClientSession
    slack: SlackContext | None = None  # present when SLACK_BOT_TOKEN is set


def build_notifiers(settings: Settings, deps: NotifierDeps) -> dict[str, Notifier]:
    notifiers: dict[str, Notifier] = {}
    for name, target in settings.targets.items():
        if isinstance(target, WebhookTarget):
            notifiers[name] = WebhookNotifier(target, deps.http)
        elif isinstance(target, ConsoleTarget):
            notifiers[name] = ConsoleNotifier()
        elif isinstance(target, SlackTarget) and deps.slack is not None:
            notifiers[name] = deps.slack.notifier_for(target)
    if deps.slack is not None:
        from bridge.notifiers.slack_places import THREAD_TARGET

        # Built in: runs carrying Slack thread metadata are told in that thread, whatever the routes say.
        notifiers[THREAD_TARGET] = deps.slack.thread_notifier()
    return notifiers
