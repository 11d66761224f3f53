-- Table visits: each table.seated starts one; it ends at the first table.cleared after
-- it, or, if the table is seated again first, at that next seating. Ordered by
-- occurred_at (then clear before seat at the same instant, then event id), so the
-- result does not depend on the order events arrived in.
-- Incremental: per restaurant in scope, the seatings from recompute_from on are
-- recomputed from the table events from then on (an earlier seating's end is fixed by
-- then, unless its table saw no event for longer than the margin).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        unique_key=['visit_id'],
        indexes=[
            {'columns': ['restaurant_id', 'table_id', 'seated_at']},
            {'columns': ['visit_id'], 'unique': True},
        ],
        post_hook=["{{ analyze_if_new() }}", "{{ record_watermark() }}"],
    )
}}

{%- set scope = incremental_scope() %}

with

canonical_events as (

    {%- if scope is none %}
    select * from {{ ref('canonical_events') }}
    {%- else %}
    select * from {{ scoped_rows(ref('canonical_events'), 'occurred_at', scope) }} as events
    {%- endif %}

),

table_events as (

    select
        id as event_id,
        company_id,
        restaurant_id,
        table_id,
        type,
        occurred_at,
        covers
    from canonical_events
    where type in ('table.seated', 'table.cleared') and source = 'pos'

),

numbered as (

    -- Every event gets the number of seatings up to and including it on its table.
    select
        *,
        count(*) filter (where type = 'table.seated') over (
            partition by company_id, restaurant_id, table_id
            order by occurred_at, type, event_id
            rows between unbounded preceding and current row
        ) as seating_number
    from table_events

),

seatings as (

    select
        event_id as visit_id,
        company_id,
        restaurant_id,
        table_id,
        seating_number,
        occurred_at as seated_at,
        covers,
        lead(occurred_at) over (
            partition by company_id, restaurant_id, table_id
            order by seating_number
        ) as next_seated_at
    from numbered
    where type = 'table.seated'

),

clears as (

    select
        company_id,
        restaurant_id,
        table_id,
        seating_number,
        min(occurred_at) as cleared_at
    from numbered
    where type = 'table.cleared' and seating_number > 0
    group by 1, 2, 3, 4

),

joined as (

    select
        seatings.visit_id::text as visit_id,
        seatings.company_id,
        seatings.restaurant_id,
        seatings.table_id,
        seatings.seated_at,
        coalesce(clears.cleared_at, seatings.next_seated_at) as cleared_at,
        clears.cleared_at is null and seatings.next_seated_at is not null as cleared_implicitly,
        seatings.next_seated_at,
        seatings.covers
    from seatings
    left join clears
        on seatings.company_id = clears.company_id
        and seatings.restaurant_id = clears.restaurant_id
        and seatings.table_id = clears.table_id
        and seatings.seating_number = clears.seating_number

),

final as (

    select * from joined

)

select * from final
