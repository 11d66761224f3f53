"""ops.try_timestamptz is parallel unsafe: its exception block starts a subtransaction.

0005 declared it `parallel safe`. On a month of data the planner chose a parallel scan
for canonical_events' incremental insert and PostgreSQL refused: "cannot start
subtransactions during a parallel operation". A function with an EXCEPTION clause must
not run in parallel mode at all (not even restricted to the leader).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("alter function ops.try_timestamptz(text) parallel unsafe")


def downgrade() -> None:
    op.execute("alter function ops.try_timestamptz(text) parallel safe")
