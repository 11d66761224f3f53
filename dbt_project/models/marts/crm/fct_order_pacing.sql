-- In-meal pacing per table visit: seated -> first order, rounds of fired items and the
-- gaps between them, spend and covers. A round is a run of item fires (across the
-- visit's orders) each within round_gap_seconds of the previous fire.
-- Incremental: the visits seated from recompute_from on, per restaurant in scope.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        unique_key=['visit_id'],
        indexes=[
            {'columns': ['restaurant_id', 'seated_at']},
            {'columns': ['visit_id'], 'unique': True},
        ],
        pre_hook="{{ hash_joins_when_incremental() }}",
        post_hook=["{{ analyze_if_new() }}", "{{ record_watermark() }}"],
    )
}}

{%- set scope = incremental_scope() %}

with

restaurants as (

    select * from {{ source('ops', 'restaurants') }}

),

visits as (

    {%- if scope is none %}
    select * from {{ ref('int_visits') }}
    {%- else %}
    select * from {{ scoped_rows(ref('int_visits'), 'seated_at', scope) }} as int_visits
    {%- endif %}

),

orders as (

    select * from {{ ref('int_orders') }}
    {%- if scope is not none %}
    where visit_id in (select visit_id from visits)
    {%- endif %}

),

order_lines as (

    select * from {{ ref('int_order_lines') }}
    {%- if scope is not none %}
    where (company_id, restaurant_id, order_id) in (
        select company_id, restaurant_id, order_id from orders
    )
    {%- endif %}

),

visit_orders as (

    select
        visit_id,
        count(*) as orders,
        min(opened_at) as first_order_at,
        sum(net_sales) as spend,
        max(covers) as order_covers
    from orders
    where visit_id is not null
    group by 1

),

fires as (

    select
        orders.visit_id,
        order_lines.fired_at,
        lag(order_lines.fired_at) over (
            partition by orders.visit_id order by order_lines.fired_at
        ) as previous_fired_at
    from order_lines
    inner join orders
        on order_lines.company_id = orders.company_id
        and order_lines.restaurant_id = orders.restaurant_id
        and order_lines.order_id = orders.order_id
    where orders.visit_id is not null and order_lines.fired_at is not null

),

fires_numbered as (

    select
        visit_id,
        fired_at,
        count(*) filter (
            where previous_fired_at is null
                or fired_at - previous_fired_at
                > interval '{{ var("round_gap_seconds") }} seconds'
        ) over (partition by visit_id order by fired_at rows unbounded preceding)
            as round_number
    from fires

),

rounds as (

    select
        visit_id,
        round_number,
        min(fired_at) as round_started_at
    from fires_numbered
    group by 1, 2

),

round_gaps as (

    select
        visit_id,
        round_started_at,
        {{ seconds_between(
            'lag(round_started_at) over (partition by visit_id order by round_started_at)',
            'round_started_at'
        ) }} as gap_seconds
    from rounds

),

visit_rounds as (

    select
        visit_id,
        count(*) as rounds,
        min(round_started_at) as first_round_at,
        max(round_started_at) as last_round_at,
        avg(gap_seconds) as mean_round_gap_seconds,
        max(gap_seconds) as max_round_gap_seconds
    from round_gaps
    group by 1

),

final as (

    select
        visits.visit_id::text as visit_id,
        visits.restaurant_id::text as restaurant_id,
        visits.company_id::text as company_id,
        visits.table_id::text as table_id,
        {{ business_date('visits.seated_at', 'restaurants.timezone') }}::date as business_date,
        visits.seated_at::timestamptz as seated_at,
        visits.cleared_at::timestamptz as cleared_at,
        coalesce(visits.covers, visit_orders.order_covers)::integer as covers,
        coalesce(visit_orders.orders, 0)::integer as orders,
        visit_orders.first_order_at::timestamptz as first_order_at,
        {{ seconds_between('visits.seated_at', 'visit_orders.first_order_at') }}::numeric
            as seated_to_first_order_seconds,
        coalesce(visit_rounds.rounds, 0)::integer as rounds,
        visit_rounds.first_round_at::timestamptz as first_round_at,
        visit_rounds.last_round_at::timestamptz as last_round_at,
        round(visit_rounds.mean_round_gap_seconds, 3)::numeric as mean_round_gap_seconds,
        visit_rounds.max_round_gap_seconds::numeric as max_round_gap_seconds,
        coalesce(visit_orders.spend, 0)::numeric as spend,
        round(
            coalesce(visit_orders.spend, 0)
            / nullif(coalesce(visits.covers, visit_orders.order_covers), 0),
            2
        )::numeric as spend_per_cover
    from visits
    inner join restaurants
        on visits.restaurant_id = restaurants.restaurant_id
        and visits.company_id = restaurants.company_id
    left join visit_orders on visits.visit_id = visit_orders.visit_id
    left join visit_rounds on visits.visit_id = visit_rounds.visit_id

)

select * from final
