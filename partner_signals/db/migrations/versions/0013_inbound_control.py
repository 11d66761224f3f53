"""Inbound integrations under operator control: the per-company, per-source indexes the
status answers read (last event, events and rejections in the last hour and day).

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create index if not exists webhook_events_company_source_received
            on raw.webhook_events (company_id, source, received_at);
        create index if not exists rejected_requests_company_source_received
            on raw.rejected_requests (company_id, source, received_at);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop index if exists raw.rejected_requests_company_source_received;
        drop index if exists raw.webhook_events_company_source_received;
        """
    )
