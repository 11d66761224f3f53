"""Foundation: ops registry (companies, restaurants, integrations, ingest keys) and raw landing.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SLUG = r"'^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'"


def upgrade() -> None:
    op.execute("create schema if not exists raw")
    op.execute("create schema if not exists ops")
    op.execute(
        f"""
        create table ops.companies (
            company_id text primary key check (company_id ~ {SLUG}),
            name text not null,
            plan text not null default 'standard'
                check (plan in ('starter', 'standard', 'enterprise')),
            created_at timestamptz not null default now()
        );
        create table ops.restaurants (
            restaurant_id text primary key check (restaurant_id ~ {SLUG}),
            company_id text not null references ops.companies,
            name text not null,
            timezone text not null,
            created_at timestamptz not null default now()
        );
        create index restaurants_company_idx on ops.restaurants (company_id);

        -- One row per enabled provider or partner adapter. Secrets live only in
        -- secret_ciphertext (AES-256-GCM); config holds what is safe to show.
        create table ops.integrations (
            integration_id bigint generated always as identity primary key,
            company_id text not null references ops.companies,
            restaurant_id text references ops.restaurants,
            provider text not null,
            config jsonb not null default '{{}}'::jsonb,
            secret_ciphertext bytea,
            enabled boolean not null default true,
            created_at timestamptz not null default now(),
            updated_at timestamptz not null default now()
        );
        create unique index integrations_scope_key
            on ops.integrations (company_id, provider, coalesce(restaurant_id, ''));

        create table ops.ingest_keys (
            key_id bigint generated always as identity primary key,
            company_id text not null references ops.companies,
            key_prefix text not null,
            key_hash bytea not null unique,
            created_at timestamptz not null default now(),
            revoked_at timestamptz
        );

        create table ops.audit_log (
            audit_id bigint generated always as identity primary key,
            at timestamptz not null default now(),
            actor text not null,
            action text not null,
            company_id text,
            details jsonb not null default '{{}}'::jsonb
        );

        -- Raw landing: the verbatim body, headers minus secrets, and the few fields
        -- every consumer needs. Never updated; duplicates are refused by the key.
        create table raw.webhook_events (
            id bigint generated always as identity primary key,
            source text not null,
            company_id text not null,
            event_id text not null,
            event_type text not null,
            received_at timestamptz not null,
            headers jsonb not null,
            body text not null,
            constraint webhook_events_dedup unique (company_id, source, event_id)
        );

        create table raw.order_events (
            id bigint generated always as identity primary key,
            source text not null default 'pos',
            company_id text not null,
            restaurant_id text not null,
            event_id text not null,
            event_type text not null,
            occurred_at timestamptz not null,
            received_at timestamptz not null,
            headers jsonb not null,
            body text not null,
            constraint order_events_dedup unique (company_id, source, event_id)
        );

        create table raw.rejected_requests (
            id bigint generated always as identity primary key,
            received_at timestamptz not null,
            source text not null,
            company_id text,
            path text not null,
            status_code integer not null,
            reason text not null,
            headers jsonb not null,
            body_excerpt text not null,
            body_bytes integer not null
        );

        create function raw.refuse_change() returns trigger language plpgsql as $$
        begin
            raise exception 'raw.% is append-only: % refused', tg_table_name, tg_op
                using errcode = 'insufficient_privilege';
        end;
        $$;
        """
    )
    for table in ("webhook_events", "order_events", "rejected_requests"):
        op.execute(
            f"""
            create trigger {table}_append_only
                before update or delete on raw.{table}
                for each row execute function raw.refuse_change();
            create trigger {table}_no_truncate
                before truncate on raw.{table}
                for each statement execute function raw.refuse_change();
            """
        )


def downgrade() -> None:
    op.execute("drop schema raw cascade")
    op.execute("drop schema ops cascade")
