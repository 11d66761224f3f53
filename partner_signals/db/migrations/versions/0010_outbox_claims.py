"""Outbox claims name their worker, so a worker can renew its own leases (a heartbeat).

A claimed row's lease is its next_attempt_at pushed a short way ahead; the worker that
claimed it (claimed_by, a random id per run) renews the lease of every row it still
holds while it works, and clears claimed_by when it writes the row's result. A worker
that dies stops renewing, so its rows come due again within one lease (30 s by default)
instead of the five minutes a single long lease needed. The id also tells a worker that
picks up a row still naming another one that it is taking over a dead (or stalled)
worker's claim.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table ops.outbox add column if not exists claimed_by uuid;
        -- Renewals and releases find a worker's rows by its id; only rows held right now
        -- are in the index, so it stays as small as the work in flight.
        create index if not exists outbox_claimed_by_idx on ops.outbox (claimed_by)
            where claimed_by is not null;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop index if exists ops.outbox_claimed_by_idx;
        alter table ops.outbox drop column if exists claimed_by;
        """
    )
