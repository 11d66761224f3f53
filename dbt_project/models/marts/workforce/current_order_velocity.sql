-- Order velocity now: orders per minute over the last 5, 15 and 60 minutes, evaluated
-- when the view is read, over every event landed so far (live_events: materialized or
-- not). Every registered restaurant has a row, quiet ones with zeros.
{{ config(materialized='view') }}

with

restaurants as (

    select * from {{ source('ops', 'restaurants') }}

),

live_events as (

    select * from {{ ref('live_events') }}

),

order_events as (

    -- POS order events and delivery-platform status changes of the last hours: enough to
    -- find when each order that could count was opened or received.
    select company_id, restaurant_id, source, order_id, type, delivery_status, occurred_at
    from live_events
    where {{ now_window('occurred_at') }}
        and order_id is not null
        and (
            (source = 'pos' and type like 'order.%')
            or type = 'delivery.status_changed'
        )

),

orders as (

    -- As int_orders (opened: order.created, else the earliest event) and
    -- int_delivery_orders (received: the `received` status, else the earliest).
    select
        company_id,
        restaurant_id,
        case
            when source = 'pos' then coalesce(
                min(occurred_at) filter (where type = 'order.created'), min(occurred_at)
            )
            else coalesce(
                min(occurred_at) filter (where delivery_status = 'received'), min(occurred_at)
            )
        end as ordered_at
    from order_events
    group by company_id, restaurant_id, source, order_id

),

recent_orders as (

    select company_id, restaurant_id, ordered_at
    from orders
    where ordered_at > {{ current_ts() }} - interval '60 minutes'
        and ordered_at <= {{ current_ts() }}

),

counted as (

    select
        restaurants.restaurant_id,
        restaurants.company_id,
        count(recent_orders.ordered_at) filter (
            where recent_orders.ordered_at > {{ current_ts() }} - interval '5 minutes'
        ) as orders_5m,
        count(recent_orders.ordered_at) filter (
            where recent_orders.ordered_at > {{ current_ts() }} - interval '15 minutes'
        ) as orders_15m,
        count(recent_orders.ordered_at) as orders_60m
    from restaurants
    left join recent_orders
        on restaurants.restaurant_id = recent_orders.restaurant_id
        and restaurants.company_id = recent_orders.company_id
    group by restaurants.restaurant_id, restaurants.company_id

),

final as (

    select
        restaurant_id::text as restaurant_id,
        company_id::text as company_id,
        ({{ current_ts() }})::timestamptz as as_of,
        orders_5m::integer as orders_last_5m,
        orders_15m::integer as orders_last_15m,
        orders_60m::integer as orders_last_60m,
        round(orders_5m / 5.0, 4)::numeric as orders_per_minute_5m,
        round(orders_15m / 15.0, 4)::numeric as orders_per_minute_15m,
        round(orders_60m / 60.0, 4)::numeric as orders_per_minute_60m
    from counted

)

select * from final
