-- POS order lines: one row per (order, line) with the first time each item step happened.
-- Item attributes come from the line's earliest event that carries them.
-- Incremental: the orders with events in scope are recomputed whole (incremental_scope).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        unique_key=['company_id', 'restaurant_id', 'order_id'],
        indexes=[
            {'columns': ['restaurant_id', 'item_id']},
            {'columns': ['restaurant_id', 'fired_at']},
            {'columns': ['company_id', 'restaurant_id', 'order_id']},
        ],
        post_hook=["{{ analyze_if_new() }}", "{{ record_watermark() }}"],
    )
}}

-- depends_on: {{ ref('int_scope_orders') }}
{%- set scope = incremental_scope() %}

with

canonical_events as (

    select * from {{ ref('canonical_events') }}
    {%- if scope is not none %}
    where (company_id, restaurant_id, order_id) in {{ scoped_orders(scope) }}
    {%- endif %}

),

item_events as (

    select
        company_id,
        restaurant_id,
        order_id,
        line_id,
        item_id,
        item_name,
        quantity,
        unit_price,
        type,
        occurred_at,
        id as event_id
    from canonical_events
    where source = 'pos'
        and type in (
            'order.item_added', 'order.item_fired', 'order.item_ready', 'order.item_served'
        )
        and line_id is not null

),

aggregated as (

    select
        company_id,
        restaurant_id,
        order_id,
        line_id,
        (array_agg(item_id order by occurred_at, event_id)
            filter (where item_id is not null))[1] as item_id,
        (array_agg(item_name order by occurred_at, event_id)
            filter (where item_name is not null))[1] as item_name,
        (array_agg(quantity order by type = 'order.item_added' desc, occurred_at, event_id)
            filter (where quantity is not null))[1] as quantity,
        (array_agg(unit_price order by type = 'order.item_added' desc, occurred_at, event_id)
            filter (where unit_price is not null))[1] as unit_price,
        min(occurred_at) filter (where type = 'order.item_added') as added_at,
        min(occurred_at) filter (where type = 'order.item_fired') as fired_at,
        min(occurred_at) filter (where type = 'order.item_ready') as ready_at,
        min(occurred_at) filter (where type = 'order.item_served') as served_at
    from item_events
    group by 1, 2, 3, 4

),

timed as (

    select
        *,
        case
            when ready_at >= fired_at then {{ seconds_between('fired_at', 'ready_at') }}
        end as prep_seconds,
        coalesce(quantity, 1) * coalesce(unit_price, 0) as line_amount
    from aggregated

),

final as (

    select * from timed

)

select * from final
