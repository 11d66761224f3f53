"""The control plane: operators with roles, and an audit trail that cannot be rewritten.

Operators authenticate to the admin API with a bearer token shown once and stored as a
SHA-256 digest (like every key here). A token may be bound to one company. The audit
log gains the target of each change, the before and after of its non-secret fields and
the request that made it, and becomes append-only like the raw tables. Keys learn when
they were last used, for the operator's key listings.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table ops.operators (
            operator_id bigint generated always as identity primary key,
            name text not null check (name ~ '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$'),
            role text not null check (role in ('viewer', 'operator', 'admin')),
            company_id text references ops.companies,
            token_prefix text not null,
            token_hash bytea not null unique,
            created_at timestamptz not null default now(),
            created_by text not null,
            last_used_at timestamptz,
            revoked_at timestamptz
        );
        -- One live token per name: a name in the audit trail means one holder.
        create unique index operators_live_name on ops.operators (name)
            where revoked_at is null;

        alter table ops.audit_log
            add column target text,
            add column before jsonb,
            add column after jsonb,
            add column request_id text;
        create index audit_log_company_at on ops.audit_log (company_id, audit_id desc);

        alter table ops.ingest_keys add column last_used_at timestamptz;
        alter table ops.partner_keys add column last_used_at timestamptz;

        create function ops.refuse_change() returns trigger language plpgsql as $$
        begin
            raise exception '%.% is append-only: % refused', tg_table_schema,
                tg_table_name, tg_op using errcode = 'insufficient_privilege';
        end;
        $$;
        create trigger audit_log_append_only before update or delete on ops.audit_log
            for each row execute function ops.refuse_change();
        create trigger audit_log_no_truncate before truncate on ops.audit_log
            for each statement execute function ops.refuse_change();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop trigger audit_log_no_truncate on ops.audit_log;
        drop trigger audit_log_append_only on ops.audit_log;
        drop function ops.refuse_change();
        alter table ops.partner_keys drop column last_used_at;
        alter table ops.ingest_keys drop column last_used_at;
        drop index ops.audit_log_company_at;
        alter table ops.audit_log drop column target, drop column before,
            drop column after, drop column request_id;
        drop table ops.operators;
        """
    )
