-- Prep time by item: fired -> ready per order line, summarised per restaurant, item and
-- business day (of the fire) as p50 and p90 over that day and over the trailing
-- prep_time_window_days business days ending with it, with the samples behind each.
-- Incremental: per restaurant in scope, the business days from recompute_from's on are
-- recomputed, from the fires since prep_time_window_days (+ 1) before (the trailing
-- window reaches back that far).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        unique_key=['restaurant_id', 'item_id', 'business_date'],
        indexes=[{'columns': ['restaurant_id', 'item_id', 'business_date'], 'unique': True}],
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

order_lines as (

    {%- if scope is none %}
    select * from {{ ref('int_order_lines') }}
    {%- else %}
    select * from {{ scoped_rows(
        ref('int_order_lines'), 'fired_at', scope,
        days_before=var('prep_time_window_days') | int + 2,
    ) }} as int_order_lines
    {%- endif %}

),

samples as (

    select
        order_lines.restaurant_id,
        order_lines.company_id,
        order_lines.item_id,
        order_lines.item_name,
        order_lines.fired_at,
        order_lines.prep_seconds,
        {{ business_date('order_lines.fired_at', 'restaurants.timezone') }} as business_date
    from order_lines
    inner join restaurants
        on order_lines.restaurant_id = restaurants.restaurant_id
        and order_lines.company_id = restaurants.company_id
    where order_lines.prep_seconds is not null and order_lines.item_id is not null

),

recomputed_samples as (

    select samples.* from samples
    {%- if scope is not none %}
    -- Days before the first recomputed one are read only for the trailing window.
    inner join scope
        on samples.restaurant_id = scope.restaurant_id
        and samples.company_id = scope.company_id
        and samples.business_date >= scope.from_business_date
    {%- endif %}

),

daily as (

    select
        restaurant_id,
        company_id,
        item_id,
        business_date,
        (array_agg(item_name order by fired_at desc) filter (where item_name is not null))[1]
            as item_name,
        count(*) as sample_count,
        percentile_cont(0.5) within group (order by prep_seconds) as p50_prep_seconds,
        percentile_cont(0.9) within group (order by prep_seconds) as p90_prep_seconds
    from recomputed_samples
    group by 1, 2, 3, 4

),

trailing_window as (

    select
        daily.restaurant_id,
        daily.item_id,
        daily.business_date,
        count(*) as sample_count,
        percentile_cont(0.5) within group (order by samples.prep_seconds) as p50_prep_seconds,
        percentile_cont(0.9) within group (order by samples.prep_seconds) as p90_prep_seconds
    from daily
    inner join samples
        on daily.restaurant_id = samples.restaurant_id
        and daily.item_id = samples.item_id
        and samples.business_date > daily.business_date - {{ var('prep_time_window_days') }}
        and samples.business_date <= daily.business_date
    group by 1, 2, 3

),

final as (

    select
        daily.restaurant_id::text as restaurant_id,
        daily.company_id::text as company_id,
        daily.item_id::text as item_id,
        daily.item_name::text as item_name,
        daily.business_date::date as business_date,
        daily.sample_count::integer as sample_count,
        round(daily.p50_prep_seconds::numeric, 3) as p50_prep_seconds,
        round(daily.p90_prep_seconds::numeric, 3) as p90_prep_seconds,
        {{ var('prep_time_window_days') }}::integer as window_days,
        trailing_window.sample_count::integer as window_sample_count,
        round(trailing_window.p50_prep_seconds::numeric, 3) as window_p50_prep_seconds,
        round(trailing_window.p90_prep_seconds::numeric, 3) as window_p90_prep_seconds
    from daily
    inner join trailing_window
        on daily.restaurant_id = trailing_window.restaurant_id
        and daily.item_id = trailing_window.item_id
        and daily.business_date = trailing_window.business_date

)

select * from final
