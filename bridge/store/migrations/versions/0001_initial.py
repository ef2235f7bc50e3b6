"""Initial schema: run snapshots, poll cursor, outbox, Slack threads, inbound dedup, leases.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(128), primary_key=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("artifact_keys", sa.JSON, nullable=False),
        sa.Column("run", sa.JSON, nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "poll_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("start_point", UTCDateTime(), nullable=False),
        sa.Column("cursor", UTCDateTime(), nullable=False),
        sa.Column("last_success_at", UTCDateTime(), nullable=True),
        sa.Column("last_sweep_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("enqueued_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("event_id", "target", name="uq_outbox_event_target"),
    )
    op.create_index("ix_outbox_queue", "outbox", ["status", "target", "run_id", "id"])
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_table(
        "slack_threads",
        sa.Column("run_id", sa.String(128), primary_key=True),
        sa.Column("channel", sa.String(200), primary_key=True),
        sa.Column("channel_id", sa.String(64), nullable=True),
        sa.Column("ts", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("root_event_id", sa.String(64), nullable=True),
        sa.Column("shown_updated_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_slack_threads_ts", "slack_threads", ["channel_id", "ts"])
    op.create_table(
        "inbound_events",
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column("queue_key", sa.String(200), nullable=True),
        sa.Column("outcome", sa.JSON, nullable=True),
    )
    op.create_index("ix_inbound_due", "inbound_events", ["status", "next_attempt_at"])
    op.create_index("uq_inbound_dedupe", "inbound_events", ["dedupe_key"], unique=True)
    op.create_index("ix_inbound_queue", "inbound_events", ["status", "queue_key", "received_at"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("leases", "inbound_events", "slack_threads", "outbox", "poll_state", "runs"):
        op.drop_table(table)
