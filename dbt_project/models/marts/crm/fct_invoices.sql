-- Invoices: one row per Stripe invoice, its lifecycle (draft, open, paid, void,
-- uncollectible) as its events tell it. An invoice is a bill of its own, not a payment:
-- a voided one is void (it will never be paid and nothing failed), a failed attempt
-- leaves it open. It belongs to the order and visit its metadata names; an order's visit
-- fills in when only the order is named. Its paid event is also one of the payments
-- that stop time-to-pay (macros/payments.sql).
{{ config(materialized='view') }}

with

canonical_events as (

    select * from {{ ref('canonical_events') }}
    where type like 'invoice.%'

),

orders as (

    select * from {{ ref('int_orders') }}

),

invoice_events as (

    select
        id,
        company_id,
        restaurant_id,
        order_id,
        table_id,
        occurred_at,
        type,
        currency,
        data ->> 'invoice_id' as invoice_id,
        data ->> 'invoice_number' as invoice_number,
        data ->> 'visit_id' as visit_id,
        {{ safe_numeric("data ->> 'amount_due'") }} as amount_due,
        {{ safe_numeric("data ->> 'amount_paid'") }} as amount_paid,
        {{ safe_numeric("data ->> 'amount_remaining'") }} as amount_remaining,
        case type
            when 'invoice.created' then 'draft'
            when 'invoice.finalized' then 'open'
            when 'invoice.payment_failed' then 'open'
            when 'invoice.marked_uncollectible' then 'uncollectible'
            when 'invoice.paid' then 'paid'
            when 'invoice.voided' then 'void'
        end as status,
        -- Stripe stamps events to the second: a finalize and its automatic payment can
        -- share one, so at a tie the later stage wins.
        case type
            when 'invoice.created' then 1
            when 'invoice.finalized' then 2
            when 'invoice.payment_failed' then 3
            when 'invoice.marked_uncollectible' then 4
            else 5
        end as stage
    from canonical_events
    where data ? 'invoice_id'

),

latest as (

    select distinct on (company_id, invoice_id) *
    from invoice_events
    order by company_id, invoice_id, occurred_at desc, stage desc, id

),

milestones as (

    select
        company_id,
        invoice_id,
        min(occurred_at) as first_seen_at,
        min(occurred_at) filter (where type = 'invoice.created') as created_at,
        min(occurred_at) filter (where type = 'invoice.finalized') as finalized_at,
        min(occurred_at) filter (where type = 'invoice.paid') as paid_at,
        min(occurred_at) filter (where type = 'invoice.voided') as voided_at,
        min(occurred_at) filter (where type = 'invoice.marked_uncollectible')
            as marked_uncollectible_at,
        count(*) filter (where type = 'invoice.payment_failed') as payment_failures,
        (array_agg(order_id order by occurred_at desc) filter (where order_id is not null))[1]
            as order_id,
        (array_agg(visit_id order by occurred_at desc) filter (where visit_id is not null))[1]
            as visit_id,
        (array_agg(table_id order by occurred_at desc) filter (where table_id is not null))[1]
            as table_id,
        (array_agg(invoice_number order by occurred_at desc)
            filter (where invoice_number is not null))[1] as invoice_number
    from invoice_events
    group by company_id, invoice_id

),

final as (

    select
        latest.company_id::text as company_id,
        latest.restaurant_id::text as restaurant_id,
        latest.invoice_id::text as invoice_id,
        milestones.invoice_number::text as invoice_number,
        milestones.order_id::text as order_id,
        coalesce(milestones.visit_id, orders.visit_id)::text as visit_id,
        coalesce(milestones.table_id, orders.table_id)::text as table_id,
        latest.status::text as status,
        latest.currency::text as currency,
        latest.amount_due::numeric as amount_due,
        latest.amount_paid::numeric as amount_paid,
        latest.amount_remaining::numeric as amount_remaining,
        milestones.first_seen_at::timestamptz as first_seen_at,
        milestones.created_at::timestamptz as created_at,
        milestones.finalized_at::timestamptz as finalized_at,
        milestones.paid_at::timestamptz as paid_at,
        milestones.voided_at::timestamptz as voided_at,
        milestones.marked_uncollectible_at::timestamptz as marked_uncollectible_at,
        milestones.payment_failures::integer as payment_failures,
        latest.occurred_at::timestamptz as last_event_at
    from latest
    inner join milestones
        on latest.company_id = milestones.company_id
        and latest.invoice_id = milestones.invoice_id
    left join orders
        on orders.company_id = latest.company_id
        and orders.restaurant_id = latest.restaurant_id
        and orders.order_id = milestones.order_id

)

select * from final
