"""Partner API: hashed partner keys, a read-only role, and the index live reads need.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

READER = "partner_signals_reader"


def upgrade() -> None:
    op.execute(
        """
        create table ops.partner_keys (
            key_id bigint generated always as identity primary key,
            company_id text not null references ops.companies,
            restaurant_id text references ops.restaurants,
            scopes text[] not null check (
                scopes <@ array['read:workforce', 'read:crm', 'read:events', 'read:exports']
                and cardinality(scopes) > 0
            ),
            name text,
            key_prefix text not null,
            key_hash bytea not null unique,
            created_at timestamptz not null default now(),
            revoked_at timestamptz
        );
        -- "Now" is read straight from what has landed: a restaurant's recent events.
        create index if not exists order_events_restaurant_time
            on raw.order_events (restaurant_id, occurred_at);
        create schema if not exists canonical;
        create schema if not exists marts;
        create schema if not exists staging;
        """
    )
    # The partner API reads through this role; it can never write. Roles are
    # cluster-wide, so create it only once and grant it to whoever migrates.
    # Two databases migrated at once on one cluster (two test workers on a
    # fresh server) both see no role and both create it: the loser's
    # unique_violation means the role exists, which is all we wanted.
    op.execute(
        f"""
        do $$
        begin
            if not exists (select from pg_roles where rolname = '{READER}') then
                create role {READER} nologin;
            end if;
        exception when duplicate_object or unique_violation then
            null;
        end
        $$;
        do $$
        begin
            grant {READER} to current_user;
        exception when duplicate_object or unique_violation then
            null;
        end
        $$;
        grant usage on schema raw, ops, canonical, marts, staging to {READER};
        grant select on all tables in schema raw, canonical, marts, staging to {READER};
        grant select on ops.partner_keys, ops.restaurants, ops.companies to {READER};
        alter default privileges in schema raw, canonical, marts, staging
            grant select on tables to {READER};
        """
    )


def downgrade() -> None:
    op.execute("drop table ops.partner_keys")
    op.execute("drop index if exists raw.order_events_restaurant_time")
