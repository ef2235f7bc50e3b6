"""Inbox queue heads: each Slack thread's oldest pending row carries ``head``, so a claim reads only heads.

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("inbound_events", sa.Column("head", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Rows already waiting: the oldest pending row of each thread (and every unqueued pending row) is a head.
    op.execute(
        """
        UPDATE inbound_events SET head = TRUE
        WHERE status = 'pending' AND (
            queue_key IS NULL OR event_id = (
                SELECT earliest.event_id FROM inbound_events AS earliest
                WHERE earliest.queue_key = inbound_events.queue_key AND earliest.status = 'pending'
                ORDER BY earliest.received_at, earliest.event_id
                LIMIT 1
            )
        )
        """
    )
    op.create_index("ix_inbound_heads", "inbound_events", ["head", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_inbound_heads", table_name="inbound_events")
    with op.batch_alter_table("inbound_events") as batch:
        batch.drop_column("head")
