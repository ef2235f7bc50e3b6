"""Outbox queue heads and shared run bodies.

Claiming reads one row per (target, queue) instead of grouping the whole backlog,
and a run body is stored once per observation instead of once per outbox row.
Claims move from the outbox rows to the heads (``due_at`` doubles as the claim's
expiry), so the outbox's own claim columns go.

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "run_bodies",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("stored_at", UTCDateTime(), nullable=False),
        sqlite_autoincrement=True,  # ids are never reused: workers cache bodies by id
    )
    op.create_table(
        "outbox_heads",
        sa.Column("target", sa.String(200), primary_key=True),
        sa.Column("queue_key", sa.String(128), primary_key=True),
        sa.Column("head_id", BigId, nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(128), nullable=True),
    )
    op.create_index("ix_outbox_heads_due", "outbox_heads", ["target", "due_at", "head_id"])
    op.create_index("ix_outbox_heads_holder", "outbox_heads", ["claimed_by"])
    op.create_index("ux_outbox_heads_head", "outbox_heads", ["head_id"], unique=True)
    # Every queue with pending rows gets its head; claims held by old workers are
    # dropped (their sends, if any, are repeated: at-least-once).
    op.execute(
        """
        INSERT INTO outbox_heads (target, queue_key, head_id, due_at, claimed_by)
        SELECT o.target, o.run_id, o.id, o.next_attempt_at, NULL FROM outbox o
        WHERE o.status = 'pending' AND o.id = (
            SELECT min(p.id) FROM outbox p
            WHERE p.status = 'pending' AND p.target = o.target AND p.run_id = o.run_id
        )
        """
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("body_id", BigId, nullable=True))
        batch.drop_index("ix_outbox_due")
        batch.drop_column("claimed_by")
        batch.drop_column("claimed_until")
        batch.create_index("ix_outbox_body", ["body_id"])


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_body")
        batch.add_column(sa.Column("claimed_until", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(128), nullable=True))
        batch.create_index("ix_outbox_due", ["status", "next_attempt_at"])
        batch.drop_column("body_id")
    op.drop_table("outbox_heads")
    op.drop_table("run_bodies")
