-- Order velocity now: orders per minute over the last 5, 15 and 60 minutes, evaluated
-- when the view is read. Every registered restaurant has a row, quiet ones with zeros.
{{ config(materialized='view') }}

with

restaurants as (

    select * from {{ source('ops', 'restaurants') }}

),

pos_orders as (

    select * from {{ ref('int_orders') }}

),

delivery_orders as (

    select * from {{ ref('int_delivery_orders') }}

),

recent_orders as (

    select company_id, restaurant_id, opened_at as ordered_at
    from pos_orders
    where opened_at > {{ current_ts() }} - interval '60 minutes'
        and opened_at <= {{ current_ts() }}
    union all
    select company_id, restaurant_id, received_at as ordered_at
    from delivery_orders
    where received_at > {{ current_ts() }} - interval '60 minutes'
        and received_at <= {{ current_ts() }}

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
    group by 1, 2

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
