"""Drop the raw (restaurant, time) index: live reads go through canonical.live_events,
whose raw tail is found by primary key, and every landed row paid for the index.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("drop index if exists raw.order_events_restaurant_time")


def downgrade() -> None:
    op.execute(
        "create index if not exists order_events_restaurant_time "
        "on raw.order_events (restaurant_id, occurred_at)"
    )
