-- Bills: one row per POS order whose bill was requested, with its first successful
-- payment from any source (POS order.paid, Stripe or PayPal matched by restaurant and
-- order id). The earliest payment wins, so a repeated payment changes nothing.
-- Incremental: the orders with events in scope are recomputed whole (incremental_scope).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        unique_key=['company_id', 'restaurant_id', 'order_id'],
        indexes=[
            {'columns': ['restaurant_id', 'bill_requested_at']},
            {'columns': ['company_id', 'restaurant_id', 'order_id']},
        ],
        pre_hook="{{ stage_scope(orders=true) }}",
        post_hook=["{{ analyze_if_new() }}", "{{ record_watermark() }}"],
    )
}}

{%- set scope = incremental_scope() %}

with

canonical_events as (

    select * from {{ ref('canonical_events') }}
    {%- if scope is not none %}
    where (company_id, restaurant_id, order_id) in {{ scoped_orders(scope) }}
    {%- endif %}

),

orders as (

    select * from {{ ref('int_orders') }}
    {%- if scope is not none %}
    where (company_id, restaurant_id, order_id) in {{ scoped_orders(scope) }}
    {%- endif %}

),

payments as (

    select
        company_id,
        restaurant_id,
        order_id,
        source,
        occurred_at,
        amount,
        id
    from canonical_events
    where order_id is not null
        and (
            (source = 'pos' and type = 'order.paid')
            or (source in ('stripe', 'paypal') and type = 'payment.succeeded')
        )

),

first_payments as (

    select
        company_id,
        restaurant_id,
        order_id,
        min(occurred_at) as paid_at,
        (array_agg(source order by occurred_at, id))[1] as paid_via,
        count(*) as payment_events
    from payments
    group by 1, 2, 3

),

bills as (

    select
        orders.company_id,
        orders.restaurant_id,
        orders.order_id,
        orders.visit_id,
        orders.table_id,
        orders.bill_requested_at,
        orders.cancelled_at,
        first_payments.paid_at,
        first_payments.paid_via,
        coalesce(first_payments.payment_events, 0) as payment_events
    from orders
    left join first_payments
        on orders.company_id = first_payments.company_id
        and orders.restaurant_id = first_payments.restaurant_id
        and orders.order_id = first_payments.order_id
    where orders.bill_requested_at is not null

),

final as (

    select * from bills

)

select * from final
