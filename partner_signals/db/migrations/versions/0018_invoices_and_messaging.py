"""Invoices as their own lifecycle; guest messaging templates, opt-ins and opt-outs.

Invoices need no table: they are canonical events (invoice.*) and a dbt mart. Messaging
needs three: each restaurant's message language, its templates per kind and language,
and the guests' consents (opted in when, from where; opted out when, from where).

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table if not exists ops.restaurant_messaging (
            restaurant_id text primary key
                references ops.restaurants (restaurant_id) on delete cascade,
            company_id text not null references ops.companies (company_id),
            language text not null,
            updated_at timestamptz not null default now()
        );

        create table if not exists ops.message_templates (
            restaurant_id text not null
                references ops.restaurants (restaurant_id) on delete cascade,
            company_id text not null references ops.companies (company_id),
            kind text not null check (kind ~ '^[a-z][a-z0-9_]{1,31}$'),
            language text not null,
            body text not null check (length(body) between 1 and 1600),
            updated_at timestamptz not null default now(),
            updated_by text not null,
            primary key (restaurant_id, kind, language)
        );

        -- One row per guest contact and scope (a restaurant, or null: every restaurant of
        -- the company). A guest may be texted while a row in scope has no opted_out_at; a
        -- STOP opts the contact out of every row of the company.
        create table if not exists ops.message_consents (
            consent_id bigint generated always as identity primary key,
            company_id text not null references ops.companies (company_id),
            restaurant_id text references ops.restaurants (restaurant_id) on delete cascade,
            contact text not null check (contact ~ '^\\+[1-9][0-9]{6,14}$'),
            opted_in_at timestamptz,
            source text not null,
            opted_out_at timestamptz,
            opt_out_source text,
            updated_at timestamptz not null default now()
        );
        create unique index if not exists message_consents_scope
            on ops.message_consents (company_id, coalesce(restaurant_id, ''), contact);
        create index if not exists message_consents_contact
            on ops.message_consents (contact);
        """
    )
    # What was queued under the old rules and would break the new ones is not sent: a
    # receipt to a guest with no recorded opt-in (none is recorded yet), a nudge to a
    # number other than the staff one (the guest's, when no staff number was set).
    op.execute(
        """
        update ops.outbox o
        set status = 'cancelled', updated_at = now(), claimed_by = null,
            last_error = case o.event_type
                when 'receipt' then 'queued before guest opt-ins were required'
                else 'a nudge not addressed to staff' end
        from ops.integrations i
        where o.integration_id = i.integration_id and o.adapter = 'messaging'
            and o.status = 'pending'
            and (o.event_type = 'receipt'
                 or (o.event_type = 'bill.unpaid_nudge'
                     and (o.payload ->> 'to') is distinct from (i.config ->> 'nudge_to')))
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop table if exists ops.message_consents;
        drop table if exists ops.message_templates;
        drop table if exists ops.restaurant_messaging;
        """
    )
