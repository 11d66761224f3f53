-- Time-to-pay clocks running now: POS orders whose bill was requested within the now
-- window, with no successful payment from any source (macros/payments.sql: POS order.paid,
-- Stripe or PayPal payment.succeeded, a paid Stripe invoice) and not cancelled, over every event landed so far
-- (live_events). A payment before the request closes the clock too, as in fct_time_to_pay.
{{ config(materialized='view') }}

with

restaurants as (

    select * from {{ source('ops', 'restaurants') }}

),

live_events as (

    select * from {{ ref('live_events') }}

),

bill_events as (

    select id, company_id, restaurant_id, order_id, source, type, table_id, occurred_at
    from live_events
    where {{ now_window('occurred_at') }}
        and order_id is not null
        and (
            (source = 'pos' and type like 'order.%')
            or {{ is_payment_event() }}
        )

),

orders as (

    select
        company_id,
        restaurant_id,
        order_id,
        min(occurred_at) filter (
            where source = 'pos' and type = 'order.bill_requested'
        ) as bill_requested_at,
        bool_or({{ is_payment_event() }}) as is_paid,
        bool_or(source = 'pos' and type = 'order.cancelled') as is_cancelled,
        (array_agg(table_id order by type = 'order.created' desc, occurred_at, id)
            filter (where source = 'pos' and table_id is not null))[1] as table_id
    from bill_events
    group by company_id, restaurant_id, order_id

),

final as (

    select
        orders.restaurant_id::text as restaurant_id,
        orders.company_id::text as company_id,
        orders.order_id::text as order_id,
        orders.table_id::text as table_id,
        orders.bill_requested_at::timestamptz as bill_requested_at,
        greatest({{ seconds_between('orders.bill_requested_at', current_ts()) }}, 0)::numeric
            as time_to_pay_seconds,
        ({{ current_ts() }})::timestamptz as as_of
    from orders
    inner join restaurants
        on orders.restaurant_id = restaurants.restaurant_id
        and orders.company_id = restaurants.company_id
    where orders.bill_requested_at is not null
        and not orders.is_paid
        and not orders.is_cancelled

)

select * from final
