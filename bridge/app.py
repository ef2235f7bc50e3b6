"""Composition root: builds every part from settings, starts and stops them in order."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge import config_checks
from bridge.delivery import DeliveryWorker
from bridge.inbound import Inbound, build_inbound
from bridge.leadership import Leadership
from bridge.logs import get_logger, redactor
from bridge.metrics import Metrics
from bridge.notifiers.base import Notifier
from bridge.notifiers.registry import NotifierDeps, build_notifiers
from bridge.notifiers.slack import SlackContext
from bridge.oz import build_client
from bridge.poller import Poller
from bridge.settings import RouteSettings, Settings
from bridge.store import outbox
from bridge.store import runs as run_store
from bridge.store.engine import create_engine, migrate, sqlite_path
from bridge.store.wakeups import Wakeups
from bridge.web import build_web_app

log = get_logger("bridge.app")
POLL_JOB = "poll"
HOUSEKEEPING_JOB = "housekeeping"


def secrets_of(settings: Settings) -> list[str | None]:
    values = [settings.oz.api_key, settings.slack.bot_token, settings.slack.signing_secret, settings.slack.app_token]
    values += [getattr(target, "secret", None) for target in settings.targets.values()]
    return [v.get_secret_value() if v is not None else None for v in values]


class Bridge:
    """The running service: poller, delivery workers and HTTP server over one database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.engine: AsyncEngine = create_engine(settings.database_url)
        self.oz = build_client(settings.oz)
        self.http: aiohttp.ClientSession | None = None
        self.slack: SlackContext | None = None
        self.inbound: Inbound | None = None
        self.notifiers: dict[str, Notifier] = {}
        self.delivery: DeliveryWorker | None = None
        self.poller: Poller | None = None
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._poll_lock = asyncio.Lock()
        single_replica = sqlite_path(settings.database_url) is not None
        self.leadership = Leadership(self.engine, ttl=3 * settings.poll.interval, shared=not single_replica)
        self.port: int | None = None
        redactor.register(secrets_of(settings))

    async def start(self) -> None:
        await migrate(self.engine)
        if sqlite_path(self.settings.database_url) is not None:
            # One replica on SQLite: claims left by a killed process are ours to take back.
            async with self.engine.begin() as conn:
                await outbox.release_claims(conn)
        self.http = aiohttp.ClientSession()
        if self.settings.slack.bot_token is not None:
            self.slack = SlackContext(self.settings.slack, self.engine, self.metrics)
        self.notifiers = build_notifiers(self.settings, NotifierDeps(http=self.http, slack=self.slack))
        single_replica = sqlite_path(self.settings.database_url) is not None
        self.delivery = DeliveryWorker(
            self.engine, self.notifiers, self.settings.delivery, self.metrics, shared=not single_replica
        )
        self.poller = Poller(
            self.engine,
            self.oz,
            self.settings.poll,
            self._active_routes(),
            self.metrics,
            on_committed=self.delivery.wake,
        )
        await self.poller.prepare()
        self._tasks.append(asyncio.create_task(self.delivery.run(), name="delivery"))
        if not single_replica:  # every replica delivers: wake them all when rows are queued
            wakeups = Wakeups(self.settings.database_url, self.delivery.wake)
            self._tasks.append(asyncio.create_task(wakeups.run(), name="delivery-wakeups"))
        await self._start_inbound()
        await self._start_http()
        self.scheduler.add_job(
            self._poll_job,
            "interval",
            seconds=self.settings.poll.interval,
            id=POLL_JOB,
            coalesce=True,
            max_instances=1,
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.add_job(
            self._housekeeping_job, "interval", hours=1, id=HOUSEKEEPING_JOB, coalesce=True, max_instances=1
        )
        self.scheduler.start()
        log.info("oz-bridge started", port=self.port, targets=sorted(self.settings.targets))

    def _active_routes(self) -> list[RouteSettings]:
        """The routes, less the targets switched off for want of credentials."""
        off = set(config_checks.disabled_targets(self.settings))
        for name in sorted(off):
            log.warning("slack target disabled: SLACK_BOT_TOKEN is not set", target=name)
        return [
            route.model_copy(update={"to": [t for t in route.to if t not in off]}) for route in self.settings.routes
        ]

    async def _start_inbound(self) -> None:
        """Replies and buttons need a bot token to answer with, and a way in: HTTP or Socket Mode."""
        slack = self.settings.slack
        if slack.bot_token is None or (slack.signing_secret is None and slack.app_token is None):
            return
        if self.slack is None:
            self.slack = SlackContext(slack, self.engine, self.metrics)
        self.inbound = build_inbound(self.settings, self.engine, self.oz, self.slack.client, self.metrics)
        await self.inbound.start()

    async def _start_http(self) -> None:
        routes = self.inbound.routes() if self.inbound is not None else []
        app = build_web_app(self.readiness, self.render_metrics, extra_routes=routes)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port

    async def _poll_job(self) -> None:
        assert self.poller is not None
        async with self._poll_lock:
            try:
                leading = await self.leadership.claim()
            except Exception:
                log.warning("could not check the poller lease; skipping this tick", exc_info=True)
                return
            self.metrics.is_leader.set(1 if leading else 0)
            if not leading:
                return
            backoff = await self.poller.tick()
        if backoff is not None and self.scheduler.running:
            with contextlib.suppress(JobLookupError):  # shutting down: nothing left to reschedule
                self.scheduler.modify_job(POLL_JOB, next_run_time=datetime.now(UTC) + timedelta(seconds=backoff))

    async def _housekeeping_job(self) -> None:
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.delivery.retention)
        try:
            async with self.engine.begin() as conn:
                purged = await outbox.purge_delivered(conn, cutoff)
        except Exception:
            log.warning("housekeeping failed; will try again in an hour", exc_info=True)
            return
        if purged:
            log.info("purged delivered outbox rows", count=purged, delivered_before=cutoff.isoformat())

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        # Read from the database, so a follower replica reports the leader's last poll.
        try:
            async with self.engine.connect() as conn:
                state = await run_store.load_poll_state(conn)
        except Exception as exc:
            return False, {"reason": f"database unreachable ({type(exc).__name__})"}
        last = state.last_success_at if state else None
        error = self.poller.last_error if self.poller else None
        if last is None:
            return False, {"reason": "no successful poll yet", "poll_error": error}
        age = (datetime.now(UTC) - last).total_seconds()
        detail: dict[str, Any] = {
            "last_poll_success": last.isoformat(),
            "last_poll_age_seconds": round(age, 3),
            "role": "leader" if self.leadership.is_leader else "follower",
        }
        if age > 3 * self.settings.poll.interval:
            return False, {**detail, "reason": "no successful poll within 3 poll intervals", "poll_error": error}
        return True, detail

    async def render_metrics(self) -> bytes:
        try:
            async with self.engine.connect() as conn:
                counts = await outbox.counts_by_status(conn)
            self.metrics.set_outbox_counts(counts, sorted(self.settings.targets))
        except Exception:
            log.warning("could not refresh outbox gauges", exc_info=True)
        return self.metrics.render()

    async def pending_deliveries(self) -> int:
        async with self.engine.connect() as conn:
            counts = await outbox.counts_by_status(conn)
        return sum(n for (_target, status), n in counts.items() if status == outbox.PENDING)

    async def stop(self) -> None:
        """Stop polling, finish in-flight deliveries within the grace period, close."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        try:
            # A poll in flight commits its page or rolls back; either way nothing is lost.
            await asyncio.wait_for(self._poll_lock.acquire(), timeout=self.settings.delivery.shutdown_grace)
            await self.leadership.step_down()
        except TimeoutError:
            log.warning("a poll was still running at shutdown; its page will be read again")
        except Exception:
            log.warning("could not hand the poller lease back; it will expire", exc_info=True)
        if self.delivery is not None:
            await self.delivery.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self.inbound is not None:
            await self.inbound.stop()
        for notifier in self.notifiers.values():
            await notifier.close()
        if self.slack is not None:
            await self.slack.close()
        if self.http is not None:
            await self.http.close()
        await self.oz.close()
        await self.engine.dispose()
        log.info("oz-bridge stopped")


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    bridge = Bridge(settings)
    try:
        await bridge.start()
        await stop.wait()
    finally:
        await bridge.stop()
