"""Table definitions: the single description of what the bridge persists.

The Alembic migrations create exactly these; queries in the sibling modules
use them, so SQLite and PostgreSQL share one set of statements.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way out, whatever the backend keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        # SQLite stores text; a naive UTC value keeps that text sortable.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


BigId = BigInteger().with_variant(Integer(), "sqlite")
metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(128), primary_key=True),
    Column("state", String(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("artifact_keys", JSON, nullable=False),
    Column("run", JSON, nullable=False),
    Column("seen_at", UTCDateTime(), nullable=False),
    # The scheduled job finds changed runs by seen_at and digest windows by updated_at.
    Index("ix_runs_seen_at", "seen_at"),
    Index("ix_runs_updated_at", "updated_at"),
)

poll_state = Table(
    "poll_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("start_point", UTCDateTime(), nullable=False),
    Column("cursor", UTCDateTime(), nullable=False),
    Column("last_success_at", UTCDateTime(), nullable=True),
    Column("last_sweep_at", UTCDateTime(), nullable=True),  # unused since 0002, kept for rolling upgrades
    # API time: every update stamped at or before it has been read (the sweeps' mark).
    Column("swept_through", UTCDateTime(), nullable=True),
    # The API's clock minus the polling replica's, in seconds, as last measured.
    Column("clock_offset", Float(), nullable=True),
    # Why the latest poll failed, for every replica's /readyz; NULL after a success.
    Column("last_problem", Text, nullable=True),
)

# Every (event, target) pair waiting for, or done with, delivery. ``payload`` is the
# webhook body less ``run``: the run body an event was detected on is stored once per
# observation in ``run_bodies`` and referred to by ``body_id`` (rows written before
# revision 0003 still carry ``run`` in their payload).
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("target", String(200), nullable=False),
    Column("run_id", String(128), nullable=False),
    Column("event_type", String(), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("enqueued_at", UTCDateTime(), nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("body_id", BigId, nullable=True),
    UniqueConstraint("event_id", "target", name="uq_outbox_event_target"),
    Index("ix_outbox_queue", "status", "target", "run_id", "id"),
    Index("ix_outbox_body", "body_id"),
)

# One run body per observation that produced events, as JSON text, shared by every
# outbox row of that observation; deleted once no row refers to it any more. Ids are
# never reused (AUTOINCREMENT on SQLite), so a worker may cache bodies by id.
run_bodies = Table(
    "run_bodies",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", String(128), nullable=False),
    Column("body", Text, nullable=False),
    Column("stored_at", UTCDateTime(), nullable=False),
    sqlite_autoincrement=True,
)

# One row per (target, queue) with anything pending: the queue's head (its oldest
# pending outbox row) and when it may next be handed to a worker. Claiming reads
# this table by (target, due_at), never the backlog. While claimed, ``due_at`` is
# the claim's expiry, renewed by the holder while the send is in flight, so a
# dead holder's heads become due again on their own.
outbox_heads = Table(
    "outbox_heads",
    metadata,
    Column("target", String(200), primary_key=True),
    Column("queue_key", String(128), primary_key=True),
    Column("head_id", BigId, nullable=False),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("claimed_by", String(128), nullable=True),
    Index("ix_outbox_heads_due", "target", "due_at", "head_id"),
    Index("ix_outbox_heads_holder", "claimed_by"),
    # A row heads at most one queue. Workers find heads by this unique index, which
    # PostgreSQL picks whatever its statistics say in the middle of a burst.
    Index("ux_outbox_heads_head", "head_id", unique=True),
)

# Where a run is told in Slack: one row per (run, place). The place is the
# target's channel as configured, "@creator" (a DM) or "@thread" (the thread the
# run was started in, from its metadata). A row whose status_ts is still null is a
# marker left *before* posting the status message: whoever finds it knows one may
# already exist in Slack and looks there before posting another.
slack_placements = Table(
    "slack_placements",
    metadata,
    Column("run_id", String(128), primary_key=True),
    Column("place", String(200), primary_key=True),
    Column("kind", String(16), nullable=False),  # root, started, parent, dm
    Column("channel_id", String(64), nullable=True),
    Column("thread_ts", String(64), nullable=True),
    Column("status_ts", String(64), nullable=True),
    # A reply in a thread belongs to the run that owns it; a child told in its
    # parent's thread is a guest there, reachable through its own status message.
    Column("owns_thread", Boolean, nullable=False),
    Column("parent_run_id", String(128), nullable=True),
    # The run's state as its status message shows it, for its parent's "Sub-runs" line.
    Column("state", String(32), nullable=True),
    Column("muted", Boolean, nullable=False),
    Column("muted_until", UTCDateTime(), nullable=True),  # null while muted = until unmuted
    Column("created_at", UTCDateTime(), nullable=False),
    # While status_ts is null: who is posting it (a process id) and since when
    # (created_at), so a crash is told from a peer at work.
    Column("claimed_by", String(64), nullable=True),
    # The event the status message was posted for: its delivery must not also get a reply.
    Column("status_event_id", String(64), nullable=True),
    # The run's updated_at the status message shows, so a late event never rolls it back.
    Column("shown_updated_at", UTCDateTime(), nullable=True),
    Index("ix_slack_placements_status", "channel_id", "status_ts"),
    Index("ix_slack_placements_thread", "channel_id", "thread_ts"),
    Index("ix_slack_placements_parent", "parent_run_id"),
)

# Plans posted in run threads: an "Approve plan" click names a message, and this is
# how the bridge knows which run (and which plan) it belongs to, never from the click.
slack_plan_messages = Table(
    "slack_plan_messages",
    metadata,
    Column("channel_id", String(64), primary_key=True),
    Column("ts", String(64), primary_key=True),
    Column("run_id", String(128), nullable=False),
    Column("place", String(200), nullable=False),
    Column("artifact_uid", String(200), nullable=False),
    Column("posted_at", UTCDateTime(), nullable=False),
    # A plan is approved once: the click that did it (an inbox id, so a retry of that click goes on),
    # who clicked, and when. Null until approved.
    Column("approval_click", String(200), nullable=True),
    Column("approved_by", String(64), nullable=True),
    Column("approved_at", UTCDateTime(), nullable=True),
)

# Threads a person started a run from (a mention of the bot): written with the mention's inbox
# row, before the run exists, so a reply there is a bridge thread's on every replica at once.
# run_id is the newest run the bridge started in the thread (the mention's, then any retry's).
slack_started_threads = Table(
    "slack_started_threads",
    metadata,
    Column("channel_id", String(64), primary_key=True),
    Column("thread_ts", String(64), primary_key=True),
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("run_id", String(128), nullable=True),
    Column("started_at", UTCDateTime(), nullable=True),
)

# Slack users found by email (DMs to run creators), negative answers included, shared by replicas.
slack_users = Table(
    "slack_users",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("user_id", String(64), nullable=True),  # null: Slack has no user with this email
    Column("checked_at", UTCDateTime(), nullable=False),
)

# The durable inbox of Slack requests: stored before Slack gets its 200, so a
# crash after the acknowledgement still acts on the reply; the primary key is
# what makes a Slack retry (same event_id, any replica) a no-op.
inbound_events = Table(
    "inbound_events",
    metadata,
    Column("event_id", String(200), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("processed_at", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("claimed_by", String(128), nullable=True),
    Column("claimed_until", UTCDateTime(), nullable=True),
    # A second identity for the same human act: Slack sends ``message`` and
    # ``app_mention`` (two event ids) for one message, keyed here by channel + ts.
    Column("dedupe_key", String(200), nullable=True),
    # Rows sharing a queue (one Slack thread) are acted on in the order received.
    Column("queue_key", String(200), nullable=True),
    # What the effect on Oz came to, stored before Slack is told, so a retry of
    # the telling never repeats the follow-up or the cancel.
    Column("outcome", JSON, nullable=True),
    # True on the one pending row of a queue that may be acted on now (its oldest),
    # and on every pending row without a queue: a claim reads heads only, whatever the backlog.
    Column("head", Boolean, nullable=False, server_default=false()),
    Index("ix_inbound_due", "status", "next_attempt_at"),
    Index("uq_inbound_dedupe", "dedupe_key", unique=True),
    Index("ix_inbound_queue", "status", "queue_key", "received_at"),
    Index("ix_inbound_heads", "head", "next_attempt_at"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

# What the scheduled job (bridge.schedule) has told about each run, and when it
# needs its next look: one row per run it has noticed, found by due_at each tick.
run_watches = Table(
    "run_watches",
    metadata,
    Column("run_id", String(128), primary_key=True),
    # The snapshot the job last noticed; a runs row with another updated_at has changed since.
    Column("noticed_updated_at", UTCDateTime(), nullable=False),
    # The snapshot the counters below refer to (null until first reviewed).
    Column("reviewed_updated_at", UTCDateTime(), nullable=True),
    Column("reminders_sent", Integer, nullable=False),
    Column("stuck_told", Boolean, nullable=False),
    Column("cost_told", Boolean, nullable=False),
    Column("due_at", UTCDateTime(), nullable=True),
    Index("ix_run_watches_due", "due_at"),
)

# The scheduled job's own cursor over runs.seen_at, and the settings it last armed watches for.
schedule_state = Table(
    "schedule_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("seen_cursor", UTCDateTime(), nullable=False),
    Column("policy", String(200), nullable=False),
)

# One row per (digest, scheduled time) ever handled, written with its outbox rows:
# the primary key is what makes a digest go out once across replicas and restarts.
digest_sends = Table(
    "digest_sends",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("scheduled_at", UTCDateTime(), primary_key=True),
    # Null for the first time a digest is seen: earlier times count as handled, not missed.
    Column("event_id", String(64), nullable=True),
    Column("recorded_at", UTCDateTime(), nullable=False),
)
