"""Composition root: builds every part from settings, starts and stops them in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
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
from bridge.leadership import LEASE_INTERVALS, Leadership
from bridge.logs import get_logger, redactor
from bridge.metrics import Metrics
from bridge.notifiers.base import Notifier
from bridge.notifiers.registry import NotifierDeps, build_notifiers
from bridge.notifiers.slack import SlackContext
from bridge.notifiers.slack_places import thread_run_target
from bridge.oz import build_client
from bridge.poller import Poller
from bridge.readiness import assess
from bridge.schedule import TimePolicy
from bridge.schedule_job import ScheduleJob
from bridge.settings import RouteSettings, Settings
from bridge.store import outbox
from bridge.store import runs as run_store
from bridge.store.engine import WalCheckpointer, create_engine, migrate, sqlite_path
from bridge.store.wakeups import Wakeups
from bridge.web import build_web_app, make_runner

log = get_logger("bridge.app")
POLL_JOB = "poll"
START_POINT_WITHIN = 5.0  # seconds start-up waits for the API's time on first boot
OUTBOX_GAUGES_EVERY = 2.0  # seconds: the outbox gauges are counted at most this often, however often scraped
LAPSE_MARGIN = 0.05  # seconds after the leader's lease runs out that a follower looks again
HOUSEKEEPING_JOB = "housekeeping"
SCHEDULE_JOB = "schedule"
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def secrets_of(settings: Settings) -> list[str | None]:
    values = [settings.oz.api_key, settings.slack.bot_token, settings.slack.signing_secret, settings.slack.app_token]
    values += [getattr(target, "secret", None) for target in settings.targets.values()]
    return [v.get_secret_value() if v is not None else None for v in values]


async def stoppable(job: str, work: Callable[[], Awaitable[None]]) -> None:
    """Run a scheduled job's work; being cancelled by shutdown is how it ends then, not an error.

    apscheduler cancels the jobs still running when it shuts down and logs each as
    'Job … raised an exception'. Shutdown waits for the poll first, so only a job that
    outlived the grace period gets here; what it was doing commits or rolls back whole.
    """
    try:
        await work()
    except asyncio.CancelledError:
        log.info("a scheduled job was cut short by shutdown; it runs again after the next start", job=job)


class Bridge:
    """The running service: poller, delivery workers and HTTP server over one database."""

    def __init__(self, settings: Settings, clock: Clock = utcnow) -> None:
        self.settings = settings
        # One notion of "now" for everything that stores or compares times (the demo plays on a shifted one).
        self.clock = clock
        self.metrics = Metrics()
        self.engine: AsyncEngine = create_engine(settings.database_url, own_checkpoints=True)
        # SQLite means one replica: no shared leases, and claims left by a killed process are ours.
        path = sqlite_path(settings.database_url)
        self.single_replica = path is not None
        self.checkpointer = WalCheckpointer(path) if path is not None else None
        self.oz = build_client(settings.oz)
        self.http: aiohttp.ClientSession | None = None
        self.slack: SlackContext | None = None
        self.inbound: Inbound | None = None
        self.notifiers: dict[str, Notifier] = {}
        self.delivery: DeliveryWorker | None = None
        self.poller: Poller | None = None
        self.schedule: ScheduleJob | None = None
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._poll_lock = asyncio.Lock()
        self._schedule_lock = asyncio.Lock()
        self.leadership = Leadership(
            self.engine, ttl=LEASE_INTERVALS * settings.poll.interval, shared=not self.single_replica, clock=clock
        )
        self.port: int | None = None
        self._gauged_at: datetime | None = None
        redactor.register(secrets_of(settings))

    async def start(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.start()
        await migrate(self.engine)
        if self.single_replica:  # claims left by a killed process are ours to take back
            async with self.engine.begin() as conn:
                await outbox.release_claims(conn)
        self.http = aiohttp.ClientSession()
        if self.settings.slack.bot_token is not None:
            self.slack = SlackContext(self.settings.slack, self.engine, self.metrics, self.oz)
        self.notifiers = build_notifiers(self.settings, NotifierDeps(http=self.http, slack=self.slack))
        run_targets = [thread_run_target()] if self.slack is not None else []
        self.delivery = DeliveryWorker(
            self.engine,
            self.notifiers,
            self.settings.delivery,
            self.metrics,
            clock=self.clock,
            shared=not self.single_replica,
        )
        routes = self._active_routes()
        self.poller = Poller(
            self.engine,
            self.oz,
            self.settings.poll,
            routes,
            self.metrics,
            on_committed=self.delivery.wake,
            clock=self.clock,
            run_targets=run_targets,
        )
        self.schedule = ScheduleJob(
            self.engine,
            TimePolicy.of(self.settings),
            routes,
            self.settings.digests,
            self.metrics,
            usable_targets=set(self.notifiers),
            clock=self.clock,
            on_committed=self.delivery.wake,
            run_targets=run_targets,
        )
        await self._fix_start_point()
        self._tasks.append(asyncio.create_task(self.delivery.run(), name="delivery"))
        if not self.single_replica:  # every replica delivers: wake them all when rows are queued
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
        if self.schedule.needed:
            self.scheduler.add_job(
                self._schedule_job,
                "interval",
                seconds=self.settings.poll.interval,
                id=SCHEDULE_JOB,
                coalesce=True,
                max_instances=1,
            )
        self.scheduler.start()
        log.info("oz-bridge started", port=self.port, targets=sorted(self.settings.targets))

    async def _fix_start_point(self) -> None:
        """On first boot the start point is the API's now, asked before anything is served, so a
        run changed once the bridge answers /healthz is never before it. An API that does not
        answer in time leaves it to the first successful poll."""
        assert self.poller is not None
        try:
            await asyncio.wait_for(self.poller.prepare(), timeout=START_POINT_WITHIN)
        except Exception as exc:
            log.warning("could not ask the Oz API for its time; the first successful poll fixes the start point",
                        error=f"{type(exc).__name__}: {exc}")  # fmt: skip

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
            self.slack = SlackContext(slack, self.engine, self.metrics, self.oz)
        self.inbound = build_inbound(self.settings, self.engine, self.oz, self.slack, self.metrics)
        await self.inbound.start()

    async def _start_http(self) -> None:
        routes = self.inbound.routes() if self.inbound is not None else []
        app = build_web_app(self.readiness, self.render_metrics, extra_routes=routes)
        self._runner = make_runner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port

    async def _poll_job(self) -> None:
        await stoppable(POLL_JOB, self._poll_under_lease)

    async def _poll_under_lease(self) -> None:
        assert self.poller is not None
        async with self._poll_lock:
            try:
                leading = await self.leadership.claim()
            except Exception:
                log.warning("could not check the poller lease; skipping this tick", exc_info=True)
                return
            self.metrics.is_leader.set(1 if leading else 0)
            if not leading:
                self._look_again_when_the_lease_lapses()
                return
            backoff = await self.poller.tick()
        if backoff is not None and self.scheduler.running:
            with contextlib.suppress(JobLookupError):  # shutting down: nothing left to reschedule
                self.scheduler.modify_job(POLL_JOB, next_run_time=datetime.now(UTC) + timedelta(seconds=backoff))

    def _look_again_when_the_lease_lapses(self) -> None:
        """A follower's ticks keep a phase of their own, so a dead leader's lease could run out up
        to an interval before anyone looks; readiness leaves one interval after the lease for the
        new leader's first poll, and would spend it all waiting. So when the lease runs out before
        the next tick, the next tick moves to that moment; a live leader renews it long before."""
        lapses_in = self.leadership.lapses_in(self.clock())
        if lapses_in is None or lapses_in >= self.settings.poll.interval or not self.scheduler.running:
            return
        when = datetime.now(UTC) + timedelta(seconds=max(0.0, lapses_in) + LAPSE_MARGIN)
        with contextlib.suppress(JobLookupError):  # shutting down
            self.scheduler.modify_job(POLL_JOB, next_run_time=when)

    async def _schedule_job(self) -> None:
        """Reminders, stuck runs, budgets and digests: on the replica that polls."""
        if self.schedule is None or not self.leadership.is_leader:
            return
        async with self._schedule_lock:
            await stoppable(SCHEDULE_JOB, self.schedule.tick)

    async def _housekeeping_job(self) -> None:
        await stoppable(HOUSEKEEPING_JOB, self._housekeep)

    async def _housekeep(self) -> None:
        cutoff = self.clock() - timedelta(seconds=self.settings.delivery.retention)
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
        status = self.poller.status() if self.poller else None
        ready, detail = assess(state, status, self.leadership.is_leader, self.clock(), self.settings.poll.interval)
        if self.schedule is not None and self.schedule.last_error:
            detail["schedule_error"] = self.schedule.last_error
        return ready, detail

    async def render_metrics(self) -> bytes:
        await self._count_outbox()
        return self.metrics.render()

    async def _count_outbox(self) -> None:
        """Refresh the outbox gauges, at most once per ``OUTBOX_GAUGES_EVERY`` whoever scrapes and
        however often (several Prometheus servers, a dashboard, curl in a loop): the count costs in
        proportion to the rows pending and dead, so it must not run on every request."""
        now = self.clock()
        if self._gauged_at is not None and 0 <= (now - self._gauged_at).total_seconds() < OUTBOX_GAUGES_EVERY:
            return
        self._gauged_at = now  # before the count: scrapes meanwhile, or a database that fails, wait too
        try:
            async with self.engine.connect() as conn:
                counts = await outbox.gauge_counts(conn)
            # Built-in targets (the Slack thread of runs started from Slack) have queues too.
            self.metrics.set_outbox_counts(counts, sorted(set(self.settings.targets) | set(self.notifiers)))
        except Exception:
            log.warning("could not refresh outbox gauges", exc_info=True)

    async def pending_deliveries(self) -> int:
        async with self.engine.connect() as conn:
            counts = await outbox.gauge_counts(conn)
        return sum(n for (_target, status), n in counts.items() if status == outbox.PENDING)

    async def stop(self) -> None:
        """Stop polling, finish in-flight deliveries within the grace period, close."""
        if self.scheduler.running:
            # No job starts from now on, but one under way finishes: shutting the scheduler
            # down first would cancel it mid-poll (apscheduler logs that as a job error).
            self.scheduler.pause()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._schedule_lock.acquire(), timeout=self.settings.delivery.shutdown_grace)
        try:
            # A poll in flight commits its page or rolls back; either way nothing is lost.
            await asyncio.wait_for(self._poll_lock.acquire(), timeout=self.settings.delivery.shutdown_grace)
            await self.leadership.step_down()
        except TimeoutError:
            log.warning("a poll was still running at shutdown; its page will be read again")
        except Exception:
            log.warning("could not hand the poller lease back; it will expire", exc_info=True)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
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
        if self.checkpointer is not None:
            await self.checkpointer.stop()
        await self.engine.dispose()
        log.info("oz-bridge stopped")


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    bridge = Bridge(settings)
    try:
        await bridge.start()
        await stop.wait()
    finally:
        await bridge.stop()
