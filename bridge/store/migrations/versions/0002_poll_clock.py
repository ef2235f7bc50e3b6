"""Poll state in the API's time: how far reads have swept, the API's clock offset, the last problem.

``swept_through`` replaces ``last_sweep_at`` (a moment on the bridge's clock,
compared with API timestamps); existing rows start with NULL, which the poller
reads as "one lookback behind the cursor", so the first sweep after the upgrade
re-reads that much once. ``last_sweep_at`` stays, unused, so a replica still on
the old version can read the table during a rolling upgrade.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("poll_state") as batch:
        batch.add_column(sa.Column("swept_through", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("clock_offset", sa.Float(), nullable=True))
        batch.add_column(sa.Column("last_problem", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("poll_state") as batch:
        batch.drop_column("last_problem")
        batch.drop_column("clock_offset")
        batch.drop_column("swept_through")
