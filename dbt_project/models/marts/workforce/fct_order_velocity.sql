-- Order velocity per restaurant and 15-minute interval of local time, aligned to the
-- business day. Intervals run without gaps from each business day's first to its last
-- interval with an order; the per-minute rates look back 5, 15 and 60 minutes from the
-- interval's end (across business days where the window reaches back).
-- Incremental: per restaurant in scope, the business days from recompute_from's on are
-- recomputed whole, from the orders since a day before (the 60-minute rates look back
-- across the day boundary).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        unique_key=['restaurant_id', 'interval_start'],
        indexes=[{'columns': ['restaurant_id', 'interval_start'], 'unique': True}],
        pre_hook=["{{ stage_scope() }}", "{{ hash_joins_when_incremental() }}"],
        post_hook=["{{ analyze_if_new() }}", "{{ record_watermark() }}"],
    )
}}

{%- set scope = incremental_scope() %}

with

restaurants as (

    select * from {{ source('ops', 'restaurants') }}

),

{%- if scope is not none %}

scope as (

    select scope.*, {{ business_date('scope.recompute_from', 'restaurants.timezone') }} as from_business_date
    from {{ scope_relation(scope) }} as scope
    inner join restaurants
        on scope.restaurant_id = restaurants.restaurant_id
        and scope.company_id = restaurants.company_id

),
{%- endif %}

pos_orders as (

    {%- if scope is none %}
    select * from {{ ref('int_orders') }}
    {%- else %}
    select * from {{ scoped_rows(ref('int_orders'), 'opened_at', scope, days_before=2) }} as int_orders
    {%- endif %}

),

delivery_orders as (

    {%- if scope is none %}
    select * from {{ ref('int_delivery_orders') }}
    {%- else %}
    select * from {{ scoped_rows(ref('int_delivery_orders'), 'received_at', scope, days_before=2) }}
        as int_delivery_orders
    {%- endif %}

),

all_orders as (

    select
        company_id,
        restaurant_id,
        opened_at as ordered_at,
        coalesce(covers, 0) as covers,
        net_sales
    from pos_orders
    union all
    select
        company_id,
        restaurant_id,
        received_at as ordered_at,
        0 as covers,
        net_sales
    from delivery_orders

),

localized as (

    select
        restaurants.restaurant_id,
        restaurants.company_id,
        restaurants.timezone,
        {{ business_date('all_orders.ordered_at', 'restaurants.timezone') }} as business_date,
        date_bin(
            interval '5 minutes',
            {{ local_time('all_orders.ordered_at', 'restaurants.timezone') }},
            timestamp '2000-01-01'
        ) as slot_start_local,
        date_bin(
            interval '15 minutes',
            {{ local_time('all_orders.ordered_at', 'restaurants.timezone') }},
            timestamp '2000-01-01'
        ) as interval_start_local,
        all_orders.covers,
        all_orders.net_sales
    from all_orders
    inner join restaurants
        on all_orders.restaurant_id = restaurants.restaurant_id
        and all_orders.company_id = restaurants.company_id

),

slot_orders as (

    select
        restaurant_id,
        slot_start_local,
        count(*) as orders
    from localized
    group by 1, 2

),

interval_totals as (

    select
        restaurant_id,
        company_id,
        timezone,
        business_date,
        interval_start_local,
        count(*) as orders,
        sum(covers) as covers,
        sum(net_sales) as net_sales
    from localized
    group by 1, 2, 3, 4, 5

),

active_spans as (

    select
        restaurant_id,
        company_id,
        timezone,
        business_date,
        min(interval_start_local) as first_interval_local,
        max(interval_start_local) as last_interval_local
    from interval_totals
    group by 1, 2, 3, 4

),

slots as (

    -- Every 5-minute slot of the active span; every slot with an order is among them.
    select
        active_spans.restaurant_id,
        active_spans.company_id,
        active_spans.timezone,
        active_spans.business_date,
        series.slot_start_local,
        series.slot_start_local at time zone active_spans.timezone as slot_start
    from active_spans
    cross join lateral generate_series(
        active_spans.first_interval_local,
        active_spans.last_interval_local + interval '10 minutes',
        interval '5 minutes'
    ) as series (slot_start_local)

),

windowed as (

    select
        slots.*,
        coalesce(slot_orders.orders, 0) as orders_5m,
        sum(coalesce(slot_orders.orders, 0)) over (
            partition by slots.restaurant_id
            order by slots.slot_start
            range between interval '10 minutes' preceding and current row
        ) as orders_15m,
        sum(coalesce(slot_orders.orders, 0)) over (
            partition by slots.restaurant_id
            order by slots.slot_start
            range between interval '55 minutes' preceding and current row
        ) as orders_60m
    from slots
    left join slot_orders
        on slots.restaurant_id = slot_orders.restaurant_id
        and slots.slot_start_local = slot_orders.slot_start_local

),

intervals as (

    -- The last slot of each interval carries the windows ending at the interval's end.
    select
        windowed.restaurant_id,
        windowed.company_id,
        windowed.timezone,
        windowed.business_date,
        windowed.slot_start_local - interval '10 minutes' as interval_start_local,
        windowed.orders_5m,
        windowed.orders_15m,
        windowed.orders_60m
    from windowed
    where date_bin(interval '15 minutes', windowed.slot_start_local, timestamp '2000-01-01')
        = windowed.slot_start_local - interval '10 minutes'

),

final as (

    select
        intervals.restaurant_id::text as restaurant_id,
        intervals.company_id::text as company_id,
        intervals.timezone::text as timezone,
        intervals.business_date::date as business_date,
        intervals.interval_start_local::timestamp as interval_start_local,
        (intervals.interval_start_local at time zone intervals.timezone)::timestamptz
            as interval_start,
        ((intervals.interval_start_local + interval '15 minutes')
            at time zone intervals.timezone)::timestamptz as interval_end,
        coalesce(interval_totals.orders, 0)::integer as orders,
        coalesce(interval_totals.covers, 0)::integer as covers,
        coalesce(interval_totals.net_sales, 0)::numeric as net_sales,
        round(intervals.orders_5m / 5.0, 4)::numeric as orders_per_minute_5m,
        round(intervals.orders_15m / 15.0, 4)::numeric as orders_per_minute_15m,
        round(intervals.orders_60m / 60.0, 4)::numeric as orders_per_minute_60m
    from intervals
    left join interval_totals
        on intervals.restaurant_id = interval_totals.restaurant_id
        and intervals.interval_start_local = interval_totals.interval_start_local
    {%- if scope is not none %}
    -- Days before the first recomputed one were read only for the look-back.
    inner join scope
        on intervals.restaurant_id = scope.restaurant_id
        and intervals.company_id = scope.company_id
        and intervals.business_date >= scope.from_business_date
    {%- endif %}

)

select * from final
