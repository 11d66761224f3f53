"""How far each reader of canonical_events has got: the outbox and the exported files.

The outbox's position ("events enqueued up to") was a Dagster sensor cursor; the outbox
is now an asset, materialized by the sensor, the CLI or the UI, so the position lives
with the data it describes. The exports' position is the newest event whose business
days have been written to files.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- One row per reader. Readers page canonical_events by (loaded_at, id::text);
        -- event_id is null for a reader that keeps only a time.
        create table ops.canonical_readers (
            reader text primary key,
            loaded_at timestamptz not null,
            event_id text,
            updated_at timestamptz not null default now()
        );
        """
    )


def downgrade() -> None:
    op.execute("drop table ops.canonical_readers")
