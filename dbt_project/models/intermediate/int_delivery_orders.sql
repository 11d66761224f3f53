-- Delivery-platform orders: one row per platform order with when it was received, its
-- total and its latest status.
-- Incremental: the orders with events in scope are recomputed whole (incremental_scope).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        unique_key=['company_id', 'restaurant_id', 'source', 'order_id'],
        indexes=[
            {'columns': ['restaurant_id', 'received_at']},
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

status_changes as (

    select * from canonical_events
    where type = 'delivery.status_changed'

),

aggregated as (

    select
        company_id,
        restaurant_id,
        source,
        order_id,
        coalesce(
            min(occurred_at) filter (where delivery_status = 'received'), min(occurred_at)
        ) as received_at,
        (array_agg(amount order by occurred_at, id) filter (where amount is not null))[1]
            as order_total,
        (array_agg(currency order by occurred_at, id) filter (where currency is not null))[1]
            as currency,
        (array_agg(delivery_status order by occurred_at desc, id desc))[1] as latest_status,
        max(occurred_at) as latest_status_at,
        bool_or(delivery_status in ('rejected', 'cancelled')) as is_cancelled
    from status_changes
    group by 1, 2, 3, 4

),

final as (

    select
        *,
        case when is_cancelled then 0 else coalesce(order_total, 0) end as net_sales
    from aggregated

)

select * from final
