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
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
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
)

poll_state = Table(
    "poll_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("start_point", UTCDateTime(), nullable=False),
    Column("cursor", UTCDateTime(), nullable=False),
    Column("last_success_at", UTCDateTime(), nullable=True),
    Column("last_sweep_at", UTCDateTime(), nullable=True),
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

slack_threads = Table(
    "slack_threads",
    metadata,
    Column("run_id", String(128), primary_key=True),
    Column("channel", String(200), primary_key=True),
    Column("channel_id", String(64), nullable=True),
    Column("ts", String(64), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    # While ts is null the row is a "root being posted" marker: who is posting it
    # (a process id) and since when (created_at), so a crash is told from a peer at work.
    Column("claimed_by", String(64), nullable=True),
    # The event the root was posted for: its delivery must not also get a thread reply.
    Column("root_event_id", String(64), nullable=True),
    # The run's updated_at the root shows, so a late or replayed event never rolls it back.
    Column("shown_updated_at", UTCDateTime(), nullable=True),
    Index("ix_slack_threads_ts", "channel_id", "ts"),
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
    Index("ix_inbound_due", "status", "next_attempt_at"),
    Index("uq_inbound_dedupe", "dedupe_key", unique=True),
    Index("ix_inbound_queue", "status", "queue_key", "received_at"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)
