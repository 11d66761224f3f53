"""Delivery: the outbox, every attempt, dead letters, signal versions and adapter counters.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- One row per (integration, message): at-least-once delivery state. The idempotency
        -- key is what the partner sees (webhook-id, Idempotency-Key), so a retry or a replay
        -- is recognisable as the same message on their side.
        create table ops.outbox (
            delivery_id bigint generated always as identity primary key,
            integration_id bigint not null references ops.integrations on delete cascade,
            adapter text not null,
            company_id text not null,
            restaurant_id text,
            idempotency_key text not null unique,
            event_id text not null,
            event_type text not null,
            payload jsonb not null,
            version integer not null default 1,
            status text not null default 'pending'
                check (status in ('pending', 'delivered', 'dead', 'cancelled')),
            attempts integer not null default 0,
            next_attempt_at timestamptz not null default now(),
            last_error text,
            last_response_code integer,
            created_at timestamptz not null default now(),
            updated_at timestamptz not null default now(),
            delivered_at timestamptz
        );
        -- The claim query reads only due pending rows; a partial index keeps it small
        -- however many delivered rows pile up.
        create index outbox_due_idx on ops.outbox (next_attempt_at)
            where status = 'pending';
        create index outbox_integration_pending_idx on ops.outbox (integration_id)
            where status = 'pending';

        -- Every attempt, including ones not sent because the endpoint was backing off.
        -- error is truncated and redacted by the worker; never a secret or a header.
        create table ops.delivery_attempts (
            attempt_id bigint generated always as identity primary key,
            delivery_id bigint not null references ops.outbox on delete cascade,
            integration_id bigint not null,
            adapter text not null,
            attempt integer not null,
            at timestamptz not null,
            latency_ms double precision,
            response_code integer,
            outcome text not null
                check (outcome in ('delivered', 'retry', 'deferred', 'failed', 'gone')),
            error text
        );
        create index delivery_attempts_delivery_idx on ops.delivery_attempts (delivery_id);
        create index delivery_attempts_adapter_at_idx on ops.delivery_attempts (adapter, at);

        create table ops.dead_letters (
            dead_letter_id bigint generated always as identity primary key,
            delivery_id bigint not null references ops.outbox on delete cascade,
            fault text not null check (fault in ('partner', 'ours')),
            reason text not null,
            at timestamptz not null default now(),
            replayed_at timestamptz
        );
        create index dead_letters_open_idx on ops.dead_letters (at)
            where replayed_at is null;

        -- The last value pushed per (integration, signal, key): a changed value becomes
        -- the next version, sent as a correction; an unchanged one sends nothing.
        create table ops.adapter_sync_state (
            integration_id bigint not null references ops.integrations on delete cascade,
            signal text not null,
            key text not null,
            version integer not null,
            value jsonb not null,
            updated_at timestamptz not null default now(),
            primary key (integration_id, signal, key)
        );

        -- Per-adapter success and failure counts for SQL, the CLI and the Dagster UI.
        create view ops.adapter_delivery_counts as
            select
                adapter,
                count(*) filter (where outcome = 'delivered') as delivered,
                count(*) filter (where outcome <> 'delivered') as failed,
                count(*) filter (where outcome = 'retry') as retried,
                count(*) filter (where outcome = 'deferred') as deferred,
                count(*) filter (where outcome in ('failed', 'gone')) as rejected,
                max(at) filter (where outcome = 'delivered') as last_delivered_at,
                max(at) filter (where outcome <> 'delivered') as last_failed_at
            from ops.delivery_attempts
            group by adapter;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop view if exists ops.adapter_delivery_counts;
        drop table if exists ops.adapter_sync_state;
        drop table if exists ops.dead_letters;
        drop table if exists ops.delivery_attempts;
        drop table if exists ops.outbox;
        """
    )
