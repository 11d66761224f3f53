-- The orders an incremental run recomputes whole: every order with an event at or after
-- its restaurant's recompute_from (incremental_scope). Staged once a run for
-- int_order_lines, int_delivery_orders, int_orders and int_bills instead of once in each
-- (each read costs the (restaurant_id, occurred_at) index a few thousand rows a
-- restaurant). Empty when none of them runs incrementally (a full refresh, a first build).
{{
    config(
        materialized='table',
        indexes=[{'columns': ['company_id', 'restaurant_id', 'order_id'], 'unique': True}],
        post_hook=["analyze {{ this }}", "{{ mark_scope_orders() }}"],
    )
}}

-- depends_on: {{ ref('canonical_events') }}
{%- set scope = order_models_scope() %}

with

scoped_orders as (

    {%- if scope is none %}
    select null::text as company_id, null::text as restaurant_id, null::text as order_id
    where false
    {%- else %}
    {{ orders_in_scope(ref('canonical_events'), scope) }}
    {%- endif %}

),

final as (

    select
        company_id::text as company_id,
        restaurant_id::text as restaurant_id,
        order_id::text as order_id
    from scoped_orders

)

select * from final
