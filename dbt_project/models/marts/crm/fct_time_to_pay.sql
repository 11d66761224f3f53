-- Time-to-pay per bill: from the bill request to the first successful payment. The clock
-- starts when the bill is requested; while no payment has arrived the bill is `open` and
-- its time runs to the moment the view is read. A payment that happened before the bill
-- request (pay at the counter, early tap) counts as paid at once: 0 seconds.
{{ config(materialized='view') }}

with

restaurants as (

    select * from {{ source('ops', 'restaurants') }}

),

bills as (

    select * from {{ ref('int_bills') }}

),

final as (

    select
        bills.restaurant_id::text as restaurant_id,
        bills.company_id::text as company_id,
        bills.order_id::text as order_id,
        bills.visit_id::text as visit_id,
        bills.table_id::text as table_id,
        {{ business_date('bills.bill_requested_at', 'restaurants.timezone') }}::date
            as business_date,
        bills.bill_requested_at::timestamptz as bill_requested_at,
        bills.paid_at::timestamptz as paid_at,
        bills.paid_via::text as paid_via,
        bills.payment_events::integer as payment_events,
        (case
            when bills.paid_at is not null then 'paid'
            when bills.cancelled_at is not null then 'cancelled'
            else 'open'
        end)::text as status,
        coalesce(bills.paid_at < bills.bill_requested_at, false)::boolean
            as paid_before_bill_request,
        (case
            when bills.paid_at is not null then greatest(
                {{ seconds_between('bills.bill_requested_at', 'bills.paid_at') }}, 0
            )
            when bills.cancelled_at is null then greatest(
                {{ seconds_between('bills.bill_requested_at', current_ts()) }}, 0
            )
        end)::numeric as time_to_pay_seconds
    from bills
    inner join restaurants
        on bills.restaurant_id = restaurants.restaurant_id
        and bills.company_id = restaurants.company_id

)

select * from final
