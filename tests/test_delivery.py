"""The delivery policy (backoff, dead-lettering) and the worker against a real outbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.delivery import DeliveryWorker, fair_share, next_step, retry_delay
from bridge.diff import diff_run
from bridge.events import Event
from bridge.metrics import Metrics
from bridge.notifiers.base import Outcome
from bridge.settings import DeliverySettings
from bridge.store import outbox
from bridge.store.outbox import OutboxRow
from tests.conftest import make_run
from tests.test_diff import NOW, START

POLICY = DeliverySettings()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_backoff_starts_at_one_second_and_doubles_with_jitter() -> None:
    assert [retry_delay(n, POLICY, jitter=lambda: 0.5) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert 0.8 <= retry_delay(1, POLICY, jitter=lambda: 0.0) < retry_delay(1, POLICY, jitter=lambda: 0.99) <= 1.2


def test_backoff_is_capped_at_five_minutes() -> None:
    assert retry_delay(30, POLICY, jitter=lambda: 0.99) == 300.0


def test_retry_after_up_to_an_hour_replaces_the_computed_delay() -> None:
    assert retry_delay(1, POLICY, retry_after=120) == 120
    assert retry_delay(1, POLICY, retry_after=7200, jitter=lambda: 0.5) == 1.0


def row(attempts: int = 0, enqueued_at: datetime = T0) -> OutboxRow:
    return OutboxRow(1, "evt", "t", "run", "run.failed", {}, "pending", attempts, enqueued_at, enqueued_at, None)


def test_next_step_after_each_kind_of_outcome() -> None:
    assert next_step(row(), Outcome.done(), T0, POLICY) == ("delivered", None)
    assert next_step(row(), Outcome.permanent("HTTP 404"), T0, POLICY) == ("dead", None)
    step, when = next_step(row(), Outcome.retry("HTTP 503", retry_after=5), T0, POLICY)
    assert (step, when) == ("retry", T0 + timedelta(seconds=5))


def test_retries_stop_after_twenty_four_hours() -> None:
    late = T0 + timedelta(hours=23, minutes=59, seconds=59)
    assert next_step(row(attempts=40), Outcome.retry("HTTP 503"), late, POLICY)[0] == "dead"
    assert next_step(row(attempts=3), Outcome.retry("HTTP 503"), T0 + timedelta(hours=1), POLICY)[0] == "retry"


class ScriptedNotifier:
    """A target that answers from a script, recording what it was sent."""

    def __init__(self, outcomes: list[Outcome]) -> None:
        self.outcomes = outcomes
        self.received: list[str] = []

    async def send(self, event: Event) -> Outcome:
        self.received.append(event.id)
        return self.outcomes.pop(0) if self.outcomes else Outcome.done()

    async def close(self) -> None:
        pass


def events_of_run(run_id: str) -> list[Event]:
    return diff_run(None, make_run(run_id, state="QUEUED"), START, NOW)


async def drain(worker: DeliveryWorker, engine: AsyncEngine, seconds: float = 5.0) -> None:
    task = asyncio.create_task(worker.run())
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        async with engine.connect() as conn:
            counts = await outbox.counts_by_status(conn)
        if not any(status == "pending" for (_t, status) in counts):
            break
        await asyncio.sleep(0.02)
    await worker.stop()
    task.cancel()


async def test_worker_delivers_each_run_in_order_and_retries_failures(engine: AsyncEngine) -> None:
    events = events_of_run("a") + events_of_run("b")
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(e, "t") for e in events], datetime.now(UTC))
    notifier = ScriptedNotifier([Outcome.retry("HTTP 503", retry_after=0.05)])
    fast = DeliverySettings(check_interval=0.02)
    await drain(DeliveryWorker(engine, {"t": notifier}, fast, Metrics()), engine)
    a_ids = [e.id for e in events_of_run("a")]
    b_ids = [e.id for e in events_of_run("b")]
    delivered_a = [i for i in notifier.received if i in a_ids]
    assert delivered_a[-2:] == a_ids and [i for i in notifier.received if i in b_ids] == b_ids
    async with engine.connect() as conn:
        assert await outbox.counts_by_status(conn) == {}


async def test_permanent_failure_is_dead_lettered_and_can_be_requeued(engine: AsyncEngine) -> None:
    event = events_of_run("c")[0]
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(event, "t")], datetime.now(UTC))
    fast = DeliverySettings(check_interval=0.02)
    await drain(
        DeliveryWorker(engine, {"t": ScriptedNotifier([Outcome.permanent("HTTP 410")])}, fast, Metrics()), engine
    )
    async with engine.begin() as conn:
        [dead] = await outbox.dead_letters(conn)
        assert (dead.event_id, dead.last_error) == (event.id, "HTTP 410")
        assert await outbox.requeue_dead(conn, [dead.id], datetime.now(UTC)) == 1
    notifier = ScriptedNotifier([])
    await drain(DeliveryWorker(engine, {"t": notifier}, fast, Metrics()), engine)
    assert notifier.received == [event.id]


async def test_rows_for_an_unconfigured_target_are_dead_lettered(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(events_of_run("d")[0], "gone")], datetime.now(UTC))
    await drain(DeliveryWorker(engine, {}, DeliverySettings(check_interval=0.02), Metrics()), engine)
    async with engine.connect() as conn:
        [dead] = await outbox.dead_letters(conn)
    assert "no longer configured" in (dead.last_error or "")


class SlowFailingNotifier:
    """A target that hangs for a while and then fails, like one behind a dying load balancer."""

    def __init__(self) -> None:
        self.started = 0

    async def send(self, event: Event) -> Outcome:
        self.started += 1
        await asyncio.sleep(0.3)
        return Outcome.retry("timed out", retry_after=0.01)

    async def close(self) -> None:
        pass


async def test_a_slow_failing_target_does_not_starve_another_target(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for n in range(40):
            await outbox.enqueue(conn, [(events_of_run(f"slow-{n}")[0], "slow")], datetime.now(UTC))
        await outbox.enqueue(conn, [(events_of_run("fine")[0], "healthy")], datetime.now(UTC))
    slow, healthy = SlowFailingNotifier(), ScriptedNotifier([])
    worker = DeliveryWorker(engine, {"slow": slow, "healthy": healthy}, DeliverySettings(concurrency=4), Metrics())
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(100):
            if healthy.received:
                break
            await asyncio.sleep(0.01)
        assert healthy.received, "the healthy target waited behind the failing one"
        assert slow.started <= 4  # the failing target never had more than its own slots
    finally:
        await worker.stop()
        task.cancel()


class SlowNotifier:
    """A target that takes its time to answer, then accepts."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.received: list[str] = []

    async def send(self, event: Event) -> Outcome:
        self.received.append(event.id)
        await asyncio.sleep(self.seconds)
        return Outcome.done()

    async def close(self) -> None:
        pass


async def test_a_send_slower_than_the_claim_ttl_keeps_its_claim_while_in_flight(engine: AsyncEngine) -> None:
    event = events_of_run("slow")[0]
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(event, "t")], datetime.now(UTC))
    settings = DeliverySettings(claim_ttl=0.3, check_interval=0.05)
    slow = DeliveryWorker(engine, {"t": SlowNotifier(1.2)}, settings, Metrics())
    task = asyncio.create_task(slow.run())
    try:
        await asyncio.sleep(0.2)  # claimed and sending
        for _ in range(8):  # well past the TTL: a renewed claim is not up for grabs
            await asyncio.sleep(0.1)
            async with engine.begin() as conn:
                assert (
                    await conn.run_sync(outbox.claim, "other", "t", datetime.now(UTC), 10, timedelta(seconds=1)) == []
                )
    finally:
        await slow.stop()
        task.cancel()


async def test_a_dead_workers_claims_fall_due_after_the_claim_ttl(engine: AsyncEngine) -> None:
    event = events_of_run("orphan")[0]
    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(event, "t")], datetime.now(UTC))
        await conn.run_sync(outbox.claim, "killed-worker", "t", datetime.now(UTC), 10, timedelta(seconds=0.5))
    notifier = ScriptedNotifier([])
    await drain(DeliveryWorker(engine, {"t": notifier}, DeliverySettings(check_interval=0.05), Metrics()), engine)
    assert notifier.received == [event.id]


def test_replicas_split_a_target_with_fewer_queues_than_slots() -> None:
    assert fair_share(16, queues=10, replicas=3) == 4
    assert fair_share(16, queues=1000, replicas=3) == 16
    assert fair_share(16, queues=1, replicas=3) == 1
    assert fair_share(16, queues=10, replicas=1) == 16


async def test_no_info_line_per_delivery_but_a_debug_line_when_asked(engine: AsyncEngine) -> None:
    import io

    from bridge.logs import configure

    for level, expected in (("info", 0), ("debug", 2)):
        stream = io.StringIO()
        configure("json", level, stream=stream)
        run_id = f"quiet-{level}"
        async with engine.begin() as conn:
            await outbox.enqueue(conn, [(e, "t") for e in events_of_run(run_id)], datetime.now(UTC))
        await drain(
            DeliveryWorker(engine, {"t": ScriptedNotifier([])}, DeliverySettings(check_interval=0.02), Metrics()),
            engine,
        )
        assert stream.getvalue().count('"delivered"') == expected
