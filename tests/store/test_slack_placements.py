"""Slack placements: where a run is told, the lookups inbound relies on, mute, and the 0006 migration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store import slack_placements, slack_threads, slack_users
from bridge.store.engine import _alembic_config, create_engine
from bridge.store.slack_placements import THREAD_PLACE, PlannedPlacement
from tests.pg import scratch_database

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CHANNEL = "C0ALERTS01"


async def place(
    engine: AsyncEngine, planned: PlannedPlacement, status_ts: str, state: str | None = "INPROGRESS"
) -> None:
    async with engine.begin() as conn:
        assert await slack_placements.reserve(conn, planned, claimed_by="me", event_id="evt", now=NOW)
        await slack_placements.record_status(
            conn,
            planned.run_id,
            planned.place,
            channel_id=str(planned.channel_id),
            status_ts=status_ts,
            shown_updated_at=None,
            state=state,
        )


async def test_a_root_is_its_own_thread_and_status_message(engine: AsyncEngine) -> None:
    await place(engine, PlannedPlacement("run-1", CHANNEL, "root", CHANNEL, None, True), "100.1")
    async with engine.connect() as conn:
        root = await slack_placements.load(conn, "run-1", CHANNEL)
        assert root is not None and (root.thread_ts, root.status_ts) == ("100.1", "100.1")
        assert (await slack_placements.by_status_message(conn, CHANNEL, "100.1")) == root
        assert (await slack_placements.thread_owner(conn, CHANNEL, "100.1")) == root


async def test_a_started_thread_belongs_to_its_run_and_a_child_is_a_guest_there(engine: AsyncEngine) -> None:
    await place(engine, PlannedPlacement("run-1", THREAD_PLACE, "started", CHANNEL, "50.5", True), "60.1")
    await place(engine, PlannedPlacement("kid", THREAD_PLACE, "parent", CHANNEL, "50.5", False, "run-1"), "70.1")
    async with engine.connect() as conn:
        owner = await slack_placements.thread_owner(conn, CHANNEL, "50.5")
        assert owner is not None and owner.run_id == "run-1"
        assert (await slack_placements.by_status_message(conn, CHANNEL, "70.1")).run_id == "kid"  # type: ignore[union-attr]
        # The inbound side's view: a reply in the thread → its owner; a click on the child's message → the child.
        assert (await slack_threads.find_by_root(conn, CHANNEL, "50.5")).run_id == "run-1"  # type: ignore[union-attr]
        assert (await slack_threads.find_by_root(conn, CHANNEL, "70.1")).run_id == "kid"  # type: ignore[union-attr]
        assert [p.run_id for p in await slack_placements.in_thread(conn, CHANNEL, "50.5")] == ["run-1", "kid"]
        assert await slack_placements.children_states(conn, "run-1") == {"kid": "INPROGRESS"}


async def test_after_a_retry_the_newest_run_owns_the_thread(engine: AsyncEngine) -> None:
    await place(engine, PlannedPlacement("first", THREAD_PLACE, "started", CHANNEL, "50.5", True), "60.1")
    async with engine.begin() as conn:
        later = PlannedPlacement("retry", THREAD_PLACE, "started", CHANNEL, "50.5", True)
        await slack_placements.reserve(conn, later, claimed_by="me", event_id="e", now=NOW + timedelta(minutes=1))
        await slack_placements.record_status(
            conn, "retry", THREAD_PLACE, channel_id=CHANNEL, status_ts="80.1", shown_updated_at=None, state=None
        )
        owner = await slack_placements.thread_owner(conn, CHANNEL, "50.5")
    assert owner is not None and owner.run_id == "retry"


async def test_a_marker_is_no_thread_yet(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        planned = PlannedPlacement("run-1", CHANNEL, "root", CHANNEL, None, True)
        assert await slack_placements.reserve(conn, planned, claimed_by="me", event_id="e", now=NOW)
        assert not await slack_placements.reserve(conn, planned, claimed_by="peer", event_id="e", now=NOW)
        assert await slack_threads.get(conn, "run-1", CHANNEL) is None
        marker = await slack_placements.load(conn, "run-1", CHANNEL)
        assert marker is not None and not marker.is_posted and marker.claimed_by == "me"


async def test_mute_for_a_while_or_until_unmuted(engine: AsyncEngine) -> None:
    await place(engine, PlannedPlacement("run-1", CHANNEL, "root", CHANNEL, None, True), "100.1")
    async with engine.begin() as conn:
        assert await slack_placements.mute(conn, "run-1", CHANNEL, NOW + timedelta(hours=2))
        muted = await slack_placements.load(conn, "run-1", CHANNEL)
        assert muted is not None and muted.is_muted(NOW) and not muted.is_muted(NOW + timedelta(hours=3))
        assert await slack_placements.mute(conn, "run-1", CHANNEL, None)
        forever = await slack_placements.load(conn, "run-1", CHANNEL)
        assert forever is not None and forever.is_muted(NOW + timedelta(days=365))
        assert await slack_placements.unmute(conn, "run-1", CHANNEL)
        unmuted = await slack_placements.load(conn, "run-1", CHANNEL)
        assert unmuted is not None and not unmuted.is_muted(NOW)
        assert not await slack_placements.mute(conn, "other-run", CHANNEL, None)


async def test_slack_users_remember_unknown_people_too(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await slack_users.remember(conn, "Ada@Example.com", "U1", NOW)
        await slack_users.remember(conn, "nobody@example.com", None, NOW)
        await slack_users.remember(conn, "ada@example.com", "U2", NOW + timedelta(hours=1))
        ada = await slack_users.lookup(conn, "ADA@example.com")
        nobody = await slack_users.lookup(conn, "nobody@example.com")
    assert ada is not None and ada.user_id == "U2"
    assert nobody is not None and nobody.user_id is None


# ---- migration 0006 on a populated database ----------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def old_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A database at revision 0001, before placements existed."""
    if request.param == "sqlite":
        db = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
        await _upgrade(db, "0001")
        yield db
        await db.dispose()
        return
    async with scratch_database() as url:
        db = create_engine(url)
        await _upgrade(db, "0001")
        yield db
        await db.dispose()


async def _upgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), revision))


async def test_existing_slack_threads_become_root_placements(old_engine: AsyncEngine) -> None:
    async with old_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO slack_threads (run_id, channel, channel_id, ts, created_at, claimed_by, root_event_id,"
                " shown_updated_at) VALUES"
                " ('run-1', '#alerts', 'C0ALERTS01', '100.1', :at, 'p1', 'evt-1', :at),"
                " ('run-2', 'C0OTHER001', 'C0OTHER001', NULL, :at, 'p2', 'evt-2', NULL)"
            ),
            {"at": NOW.replace(tzinfo=None)},
        )
    await _upgrade(old_engine, "0006")
    async with old_engine.connect() as conn:
        root = await slack_placements.load(conn, "run-1", "#alerts")
        marker = await slack_placements.load(conn, "run-2", "C0OTHER001")
        thread = await slack_threads.find_by_root(conn, "C0ALERTS01", "100.1")
    assert root is not None and root.kind == "root" and root.owns_thread and not root.muted
    assert (root.channel_id, root.thread_ts, root.status_ts) == ("C0ALERTS01", "100.1", "100.1")
    assert (root.status_event_id, root.claimed_by, root.created_at) == ("evt-1", "p1", NOW)
    assert root.shown_updated_at == NOW
    assert marker is not None and not marker.is_posted and marker.status_event_id == "evt-2"
    assert thread is not None and thread.run_id == "run-1" and thread.channel == "#alerts"
