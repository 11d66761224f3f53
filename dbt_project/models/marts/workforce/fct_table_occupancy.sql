-- Table occupancy per visit (seated -> cleared). A visit still seated is `occupied` and
-- its occupancy runs to the moment the view is read, so "tables occupied now and for how
-- long" is `where status = 'occupied'`.
{{ config(materialized='view') }}

with

restaurants as (

    select * from {{ source('ops', 'restaurants') }}

),

visits as (

    select * from {{ ref('int_visits') }}

),

final as (

    select
        visits.visit_id::text as visit_id,
        visits.restaurant_id::text as restaurant_id,
        visits.company_id::text as company_id,
        visits.table_id::text as table_id,
        {{ business_date('visits.seated_at', 'restaurants.timezone') }}::date as business_date,
        visits.covers::integer as covers,
        visits.seated_at::timestamptz as seated_at,
        visits.cleared_at::timestamptz as cleared_at,
        visits.cleared_implicitly::boolean as cleared_implicitly,
        (case when visits.cleared_at is null then 'occupied' else 'cleared' end)::text
            as status,
        greatest(
            {{ seconds_between('visits.seated_at', 'coalesce(visits.cleared_at, ' ~ current_ts() ~ ')') }},
            0
        )::numeric as occupancy_seconds
    from visits
    inner join restaurants
        on visits.restaurant_id = restaurants.restaurant_id
        and visits.company_id = restaurants.company_id

)

select * from final
