"""Time-based events and digests: run watches, the schedule cursor, digest sends, runs indexes.

Revision ID: 0005
Revises: 0001
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_seen_at", "runs", ["seen_at"])
    op.create_index("ix_runs_updated_at", "runs", ["updated_at"])
    op.create_table(
        "run_watches",
        sa.Column("run_id", sa.String(128), primary_key=True),
        sa.Column("noticed_updated_at", UTCDateTime(), nullable=False),
        sa.Column("reviewed_updated_at", UTCDateTime(), nullable=True),
        sa.Column("reminders_sent", sa.Integer, nullable=False),
        sa.Column("stuck_told", sa.Boolean, nullable=False),
        sa.Column("cost_told", sa.Boolean, nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_run_watches_due", "run_watches", ["due_at"])
    op.create_table(
        "schedule_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("seen_cursor", UTCDateTime(), nullable=False),
        sa.Column("policy", sa.String(200), nullable=False),
    )
    op.create_table(
        "digest_sends",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("scheduled_at", UTCDateTime(), primary_key=True),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("digest_sends", "schedule_state", "run_watches"):
        op.drop_table(table)
    op.drop_index("ix_runs_updated_at", "runs")
    op.drop_index("ix_runs_seen_at", "runs")
