"""Inbound integrations under operator control: the per-company, per-source indexes the
status answers read (last event, events and rejections in the last hour and day), and
when an integration's secret was set and when the previous one (kept through a rotation)
stops being accepted.

`secret_set_at` is kept by a trigger, so every writer (the admin API, `integrations
enable`, the demo) stamps it when the sealed secrets change; a change of secrets that
does not name a new expiry ends any grace of the previous ones (an enable replaces).

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

        alter table ops.integrations
            add column if not exists secret_set_at timestamptz,
            add column if not exists previous_secret_expires_at timestamptz;
        update ops.integrations set secret_set_at = updated_at
            where secret_ciphertext is not null and secret_set_at is null;

        create or replace function ops.stamp_integration_secret() returns trigger
        language plpgsql as $$
        begin
            if new.secret_ciphertext is distinct from
                    (case when tg_op = 'UPDATE' then old.secret_ciphertext end) then
                new.secret_set_at := case when new.secret_ciphertext is null then null
                                          else now() end;
                if tg_op = 'INSERT' or new.previous_secret_expires_at
                        is not distinct from old.previous_secret_expires_at then
                    new.previous_secret_expires_at := null;
                end if;
            end if;
            return new;
        end $$;
        drop trigger if exists stamp_integration_secret on ops.integrations;
        create trigger stamp_integration_secret
            before insert or update of secret_ciphertext on ops.integrations
            for each row execute function ops.stamp_integration_secret();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop trigger if exists stamp_integration_secret on ops.integrations;
        drop function if exists ops.stamp_integration_secret();
        alter table ops.integrations
            drop column if exists previous_secret_expires_at,
            drop column if exists secret_set_at;
        drop index if exists raw.rejected_requests_company_source_received;
        drop index if exists raw.webhook_events_company_source_received;
        """
    )
