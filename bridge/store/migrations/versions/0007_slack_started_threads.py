"""Runs started from Slack: the threads they were asked for in, and plan approvals.

Adds ``slack_started_threads`` (a thread is the bridge's from the moment a
mention asking for a run is stored, before the run exists) and three columns
of ``slack_plan_messages`` that record a plan's one approval. Existing plan
messages stay unapproved.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_started_threads",
        sa.Column("channel_id", sa.String(64), primary_key=True),
        sa.Column("thread_ts", sa.String(64), primary_key=True),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("run_id", sa.String(128), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
    )
    with op.batch_alter_table("slack_plan_messages") as batch:
        batch.add_column(sa.Column("approval_click", sa.String(200), nullable=True))
        batch.add_column(sa.Column("approved_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("approved_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("slack_plan_messages") as batch:
        batch.drop_column("approved_at")
        batch.drop_column("approved_by")
        batch.drop_column("approval_click")
    op.drop_table("slack_started_threads")
