"""Slack placements: where a run is told (a root, its started thread, its parent's thread, a DM).

Replaces ``slack_threads`` (one root per run and channel): every existing row
becomes a ``root`` placement whose thread and status message are the root.
Also adds ``slack_plan_messages`` (which run a posted plan belongs to, for its
``Approve plan`` button) and ``slack_users``, the shared cache of Slack users found by email.

Revision ID: 0006
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_placements",
        sa.Column("run_id", sa.String(128), primary_key=True),
        sa.Column("place", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=True),
        sa.Column("thread_ts", sa.String(64), nullable=True),
        sa.Column("status_ts", sa.String(64), nullable=True),
        sa.Column("owns_thread", sa.Boolean, nullable=False),
        sa.Column("parent_run_id", sa.String(128), nullable=True),
        sa.Column("state", sa.String(32), nullable=True),
        sa.Column("muted", sa.Boolean, nullable=False),
        sa.Column("muted_until", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("status_event_id", sa.String(64), nullable=True),
        sa.Column("shown_updated_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_slack_placements_status", "slack_placements", ["channel_id", "status_ts"])
    op.create_index("ix_slack_placements_thread", "slack_placements", ["channel_id", "thread_ts"])
    op.create_index("ix_slack_placements_parent", "slack_placements", ["parent_run_id"])
    op.execute(
        "INSERT INTO slack_placements (run_id, place, kind, channel_id, thread_ts, status_ts, owns_thread,"
        " muted, created_at, claimed_by, status_event_id, shown_updated_at)"
        " SELECT run_id, channel, 'root', channel_id, ts, ts, TRUE, FALSE, created_at, claimed_by,"
        " root_event_id, shown_updated_at FROM slack_threads"
    )
    op.drop_index("ix_slack_threads_ts", table_name="slack_threads")
    op.drop_table("slack_threads")
    op.create_table(
        "slack_plan_messages",
        sa.Column("channel_id", sa.String(64), primary_key=True),
        sa.Column("ts", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("place", sa.String(200), nullable=False),
        sa.Column("artifact_uid", sa.String(200), nullable=False),
        sa.Column("posted_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "slack_users",
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("slack_users")
    op.drop_table("slack_plan_messages")
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
    # Only roots existed before; other placements cannot be told in the old model.
    op.execute(
        "INSERT INTO slack_threads (run_id, channel, channel_id, ts, created_at, claimed_by, root_event_id,"
        " shown_updated_at) SELECT run_id, place, channel_id, status_ts, created_at, claimed_by,"
        " status_event_id, shown_updated_at FROM slack_placements WHERE kind = 'root'"
    )
    op.drop_table("slack_placements")
