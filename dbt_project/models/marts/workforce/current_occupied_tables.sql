-- Tables occupied now: per table, the latest seating or clear landed so far (live_events)
-- within the now window; when it is a seating, the table is occupied since then. Same
-- ordering as int_visits (occurred_at, a clear before a seat at the same instant, event
-- id), so a late clear or seat gives the answer in-order arrival would have.
{{ config(materialized='view') }}

with

restaurants as (

    select * from {{ source('ops', 'restaurants') }}

),

live_events as (

    select * from {{ ref('live_events') }}

),

table_events as (

    select id, company_id, restaurant_id, table_id, type, occurred_at, covers
    from live_events
    where {{ now_window('occurred_at') }}
        and source = 'pos'
        and type in ('table.seated', 'table.cleared')

),

latest as (

    select distinct on (company_id, restaurant_id, table_id) *
    from table_events
    order by company_id, restaurant_id, table_id, occurred_at desc, type desc, id desc

),

final as (

    select
        latest.restaurant_id::text as restaurant_id,
        latest.company_id::text as company_id,
        latest.table_id::text as table_id,
        latest.id::text as visit_id,
        latest.occurred_at::timestamptz as seated_at,
        latest.covers::integer as covers,
        greatest({{ seconds_between('latest.occurred_at', current_ts()) }}, 0)::numeric
            as occupied_seconds,
        ({{ current_ts() }})::timestamptz as as_of
    from latest
    inner join restaurants
        on latest.restaurant_id = restaurants.restaurant_id
        and latest.company_id = restaurants.company_id
    where latest.type = 'table.seated'

)

select * from final
