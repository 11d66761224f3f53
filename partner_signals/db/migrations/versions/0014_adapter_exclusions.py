"""Outbound adapters under operator control: restaurants excluded from a company-wide
adapter, and the indexes the adapter status and the dead-letter listing read.

- ops.adapter_exclusions: a company-wide integration skips these restaurants; the outbox
  reads it when it fans an event or a signal out, so nothing is enqueued for them.
- delivery_attempts (integration_id, at): the status's last success and last hour per
  company and adapter (attempts carry the integration, not the company).
- outbox (company_id, delivery_id) where status = 'dead': one company's dead letters
  without reading every company's; partial, so only dead rows are in it.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table if not exists ops.adapter_exclusions (
            integration_id bigint not null references ops.integrations on delete cascade,
            restaurant_id text not null references ops.restaurants,
            created_at timestamptz not null default now(),
            created_by text not null,
            primary key (integration_id, restaurant_id)
        );
        create index if not exists delivery_attempts_integration_at
            on ops.delivery_attempts (integration_id, at);
        create index if not exists outbox_company_dead
            on ops.outbox (company_id, delivery_id) where status = 'dead';
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop index if exists ops.outbox_company_dead;
        drop index if exists ops.delivery_attempts_integration_at;
        drop table if exists ops.adapter_exclusions;
        """
    )
