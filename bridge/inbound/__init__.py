"""Inbound Slack: mentions start runs, thread replies become follow-ups, buttons act on runs.

verify → parse into a typed request → drop what cannot concern the bridge
(bots, edits, foreign threads, mentions where starting is off: no database
write) → store in the inbox, many requests per transaction (dedupe by event
id) → answer Slack → the worker finds the run from the bridge's own records,
acts on Oz once, tells Slack. HTTP (``POST /slack/events``) and Socket Mode
feed the same inbox.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from oz_agent_sdk import AsyncOzAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbound.access import AccessPolicy
from bridge.inbound.actions import ButtonHandler
from bridge.inbound.batching import GroupCommit
from bridge.inbound.feedback import SlackFeedback
from bridge.inbound.http import SlackEventsEndpoint
from bridge.inbound.identity import BotIdentity
from bridge.inbound.images import SlackImages
from bridge.inbound.inbox import Intake
from bridge.inbound.mutes import Mutes
from bridge.inbound.outcome import InboxHandler
from bridge.inbound.prefilter import StartChannels
from bridge.inbound.priority import AnswersFirst
from bridge.inbound.replies import ReplyHandler
from bridge.inbound.socket import SocketModeInbound
from bridge.inbound.starts import START_KIND, StartHandler
from bridge.inbound.threads import ThreadDirectory
from bridge.inbound.verify import RequestVerifier
from bridge.inbound.worker import InboxWorker, WorkerSettings
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.notifiers.slack import SlackContext
from bridge.settings import Settings
from bridge.store import inbox
from bridge.store.engine import sqlite_path

__all__ = ["Inbound", "WorkerSettings", "build_inbound"]
log = get_logger("bridge.inbound")


class Inbound:
    """The inbound side as the composition root sees it: routes, start, stop, wake."""

    def __init__(
        self,
        engine: AsyncEngine,
        intake: Intake,
        worker: InboxWorker,
        endpoint: SlackEventsEndpoint | None,
        socket_mode: SocketModeInbound | None,
        single_replica: bool,
    ) -> None:
        self.engine = engine
        self.intake = intake
        self.worker = worker
        self.endpoint = endpoint
        self.socket_mode = socket_mode
        self._single_replica = single_replica
        self._task: asyncio.Task[None] | None = None

    def routes(self) -> list[web.RouteDef]:
        """``POST /slack/events``; none without a signing secret, so the path answers 404."""
        return [self.endpoint.route()] if self.endpoint is not None else []

    def wake(self) -> None:
        self.worker.wake()

    async def start(self) -> None:
        if self._single_replica:
            # One replica on SQLite: claims left by a killed process are ours to take back.
            async with self.engine.begin() as conn:
                await inbox.release_claims(conn)
        self._task = asyncio.create_task(self.worker.run(), name="slack-inbox")
        if self.socket_mode is not None:
            await self.socket_mode.start()
        log.info("inbound Slack started", http=self.endpoint is not None, socket_mode=self.socket_mode is not None)

    async def stop(self) -> None:
        """Stop receiving first, then let the worker finish what it holds."""
        if self.socket_mode is not None:
            await self.socket_mode.stop()
        await self.worker.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def build_inbound(
    settings: Settings,
    engine: AsyncEngine,
    oz: AsyncOzAPI,
    context: SlackContext,
    metrics: Metrics,
    worker_settings: WorkerSettings | None = None,
) -> Inbound:
    slack_settings, slack = settings.slack, context.client
    feedback = SlackFeedback(slack)
    identity = BotIdentity(slack)
    access = AccessPolicy.of(slack_settings.allowed_users, slack_settings.allowed_channels)
    starts = StartChannels.of(slack_settings.start.channels)
    directory = ThreadDirectory(engine)
    context.on_thread(directory.learn)  # a placement planned here makes its thread ours at once
    images = SlackImages(slack, context.session, context.token)
    handlers: dict[str, InboxHandler] = {}
    reply_handler = ReplyHandler(engine, oz, feedback, identity, access, Mutes(engine, context), metrics)
    handlers["message"] = handlers["app_mention"] = reply_handler
    handlers[START_KIND] = StartHandler(
        engine, oz, slack, feedback, identity, access, starts, slack_settings.start, images, metrics
    )
    handlers["block_actions"] = ButtonHandler(
        engine, oz, feedback, access, context, slack_settings.plan_approval, metrics
    )
    writes = GroupCommit(engine)
    priority = AnswersFirst()
    worker = InboxWorker(writes, handlers, worker_settings, priority=priority)
    intake = Intake(writes, directory, metrics, on_stored=worker.wake, starts=starts)
    endpoint = None
    if slack_settings.signing_secret is not None:
        verifier = RequestVerifier(slack_settings.signing_secret.get_secret_value())
        endpoint = SlackEventsEndpoint(verifier, intake, metrics, priority)
    socket_mode = None
    if slack_settings.app_token is not None:
        socket_mode = SocketModeInbound(slack_settings.app_token.get_secret_value(), slack, intake, priority=priority)
    single_replica = sqlite_path(settings.database_url) is not None
    return Inbound(engine, intake, worker, endpoint, socket_mode, single_replica)
