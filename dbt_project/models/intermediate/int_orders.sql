-- POS orders: one row per order with its milestones, its value and the table visit it
-- belongs to (same table, opened within the visit's seating).
-- Incremental: the orders with events in scope are recomputed whole (incremental_scope);
-- the visits they can belong to were recomputed by int_visits just before.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        unique_key=['company_id', 'restaurant_id', 'order_id'],
        indexes=[
            {'columns': ['restaurant_id', 'opened_at']},
            {'columns': ['visit_id']},
            {'columns': ['company_id', 'restaurant_id', 'order_id']},
        ],
        post_hook=["{{ analyze_if_new() }}", "{{ record_watermark() }}"],
    )
}}

-- depends_on: {{ ref('int_scope_orders') }}
{%- set scope = incremental_scope() %}
{%- set scoped_order_keys = scoped_orders(scope) if scope is not none else none %}

with

canonical_events as (

    select * from {{ ref('canonical_events') }}
    {%- if scope is not none %}
    where (company_id, restaurant_id, order_id) in {{ scoped_order_keys }}
    {%- endif %}

),

order_lines as (

    select * from {{ ref('int_order_lines') }}
    {%- if scope is not none %}
    where (company_id, restaurant_id, order_id) in {{ scoped_order_keys }}
    {%- endif %}

),

visits as (

    select * from {{ ref('int_visits') }}

),

order_events as (

    select * from canonical_events
    where source = 'pos' and type like 'order.%'

),

milestones as (

    select
        company_id,
        restaurant_id,
        order_id,
        coalesce(
            min(occurred_at) filter (where type = 'order.created'), min(occurred_at)
        ) as opened_at,
        (array_agg(table_id order by type = 'order.created' desc, occurred_at, id)
            filter (where table_id is not null))[1] as table_id,
        (array_agg(covers order by occurred_at, id)
            filter (where type = 'order.created' and covers is not null))[1] as covers,
        (array_agg(channel order by occurred_at, id)
            filter (where type = 'order.created' and channel is not null))[1] as channel,
        min(occurred_at) filter (where type = 'order.bill_requested') as bill_requested_at,
        min(occurred_at) filter (where type = 'order.paid') as pos_paid_at,
        -- An order the restaurant rejected (a delivery platform's) ended like a cancelled one.
        min(occurred_at) filter (where type in ('order.cancelled', 'order.rejected'))
            as cancelled_at
    from order_events
    group by 1, 2, 3

),

line_totals as (

    select
        company_id,
        restaurant_id,
        order_id,
        count(*) as lines,
        sum(line_amount) filter (where added_at is not null) as items_amount,
        min(fired_at) as first_fired_at
    from order_lines
    group by 1, 2, 3

),

with_visits as (

    select
        milestones.*,
        visit.visit_id,
        coalesce(line_totals.lines, 0) as lines,
        line_totals.first_fired_at,
        case
            when milestones.cancelled_at is null then coalesce(line_totals.items_amount, 0)
            else 0
        end as net_sales
    from milestones
    left join line_totals
        on milestones.company_id = line_totals.company_id
        and milestones.restaurant_id = line_totals.restaurant_id
        and milestones.order_id = line_totals.order_id
    -- A table's visits never overlap, so only its latest seating at or before the
    -- order's opening can hold it: one probe of the (restaurant_id, table_id, seated_at)
    -- index per order. (A range join instead merge-joins every visit of the table.)
    left join lateral (
        select visit_id, cleared_at
        from visits
        where visits.restaurant_id = milestones.restaurant_id
            and visits.table_id = milestones.table_id
            and visits.company_id = milestones.company_id
            and visits.seated_at <= milestones.opened_at
        order by visits.seated_at desc, coalesce(visits.cleared_at, 'infinity'::timestamptz) desc
        limit 1
    ) as visit
        on milestones.opened_at < coalesce(visit.cleared_at, 'infinity'::timestamptz)

),

final as (

    select * from with_visits

)

select * from final
