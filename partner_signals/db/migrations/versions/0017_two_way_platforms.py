"""Two-way delivery platforms: external orders, their status calls, webhook registrations and the sync log.

- ops.external_orders: one row per platform order (company, platform, external id), linked
  to its POS order when the POS names it; its canonical and platform status, the raw body
  of its latest event, and what the POS has said about its lines (to know when the last
  line is ready).
- ops.outbox.sequence_key: messages sharing one are sent in delivery_id order, each only
  after the one before it was delivered (a platform's `ready` never overtakes `accepted`).
- ops.dead_letters.fault gains `credentials`: the platform refused our stored credentials
  (401/403); fix them, then replay.
- ops.sync_log: every inbound batch window and every outbound call run.
- ops.webhook_registrations: each call to a platform's webhook registration endpoint.
- ops.partner_keys may carry the scope read:orders; the partner API's role reads
  ops.external_orders.

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table if not exists ops.external_orders (
            company_id text not null references ops.companies,
            platform text not null,
            external_order_id text not null,
            restaurant_id text,
            pos_order_id text,
            status text not null check (status in ('received', 'accepted', 'rejected',
                'preparing', 'ready', 'picked_up', 'delivered', 'cancelled')),
            platform_status text,
            raw jsonb not null default '{}'::jsonb,
            received_at timestamptz not null default now(),
            updated_at timestamptz not null default now(),
            last_event_at timestamptz,
            -- The last status call the platform acknowledged (the platforms step writes it).
            synced_at timestamptz,
            synced_status text,
            -- What the POS said about the linked order: its lines, which of them are
            -- ready, whether any was fired (the `ready` call waits for the last line).
            pos_lines text[] not null default '{}',
            pos_lines_ready text[] not null default '{}',
            pos_fired boolean not null default false,
            primary key (company_id, platform, external_order_id)
        );
        create index if not exists external_orders_pos_order
            on ops.external_orders (company_id, pos_order_id) where pos_order_id is not null;
        create index if not exists external_orders_received
            on ops.external_orders (company_id, received_at, platform, external_order_id);
        -- The partner API reads it (scope read:orders), filtered by the key's company.
        grant select on ops.external_orders to partner_signals_reader;

        alter table ops.outbox add column if not exists sequence_key text;
        create index if not exists outbox_sequence_idx on ops.outbox (sequence_key, delivery_id)
            where sequence_key is not null;

        alter table ops.dead_letters drop constraint if exists dead_letters_fault_check;
        alter table ops.dead_letters add constraint dead_letters_fault_check
            check (fault in ('partner', 'ours', 'credentials'));

        create table if not exists ops.sync_log (
            sync_id bigint generated always as identity primary key,
            company_id text not null references ops.companies,
            integration_id bigint references ops.integrations on delete set null,
            platform text not null,
            sync_type text not null,
            direction text not null check (direction in ('inbound', 'outbound')),
            status text not null check (status in ('completed', 'failed')),
            started_at timestamptz not null,
            completed_at timestamptz,
            failed_at timestamptz,
            records_processed integer not null default 0,
            errors jsonb not null default '[]'::jsonb
        );
        create index if not exists sync_log_company
            on ops.sync_log (company_id, sync_id desc);

        create table if not exists ops.webhook_registrations (
            registration_id bigint generated always as identity primary key,
            company_id text not null references ops.companies,
            platform text not null,
            url text not null,
            at timestamptz not null default now(),
            ok boolean not null,
            response_code integer,
            detail text not null
        );

        -- Where the platforms step has read raw events up to (raw ids, see platforms/sync.py).
        create table if not exists ops.platform_sync_positions (
            raw_table text primary key,
            last_id bigint not null,
            -- The highest id read (rows between the two are read again, not logged again).
            read_id bigint not null default 0
        );

        alter table ops.partner_keys drop constraint if exists partner_keys_scopes_check;
        alter table ops.partner_keys add constraint partner_keys_scopes_check check (
            scopes <@ array['read:workforce', 'read:crm', 'read:events', 'read:exports',
                            'read:orders']
            and cardinality(scopes) > 0
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        alter table ops.partner_keys drop constraint if exists partner_keys_scopes_check;
        alter table ops.partner_keys add constraint partner_keys_scopes_check check (
            scopes <@ array['read:workforce', 'read:crm', 'read:events', 'read:exports']
            and cardinality(scopes) > 0
        ) not valid;
        drop table if exists ops.platform_sync_positions;
        drop table if exists ops.webhook_registrations;
        drop table if exists ops.sync_log;
        alter table ops.dead_letters drop constraint if exists dead_letters_fault_check;
        alter table ops.dead_letters add constraint dead_letters_fault_check
            check (fault in ('partner', 'ours')) not valid;
        drop index if exists ops.outbox_sequence_idx;
        alter table ops.outbox drop column if exists sequence_key;
        drop table if exists ops.external_orders;
        """
    )
