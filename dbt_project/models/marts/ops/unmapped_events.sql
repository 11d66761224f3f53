-- Landed events that map to nothing, counted per company, source, provider event name
-- and reason: what a provider sends that no staging vocabulary translates, what names
-- no restaurant, or no order or table its type needs, and events quarantined for
-- naming a restaurant that is not their company's. Small (one row per
-- name a company's sources sent unmapped), so it is rebuilt whole on every run: 0.6 s of
-- an incremental run on 200k landed events (int_unmapped_events 1.0 s, canonical_events
-- 3.4 s, measured on the 2-core test machine). A table, not a view, so the sensor's runs
-- refresh it and evaluate its check.
with

unmapped as (

    select * from {{ ref('int_unmapped_events') }}

),

counted as (

    select
        company_id,
        source,
        provider_event_type,
        -- A name has one reason under one vocabulary, but events of a mapped name can
        -- miss an id (no_restaurant_id, ...) or be quarantined (foreign_restaurant):
        -- a row per reason.
        unmapped_reason as reason,
        max(raw_table) as raw_table,
        count(*) as events,
        min(received_at) as first_received_at,
        max(received_at) as last_received_at,
        max(raw_id) as sample_raw_id,
        array_agg(distinct provider_status order by provider_status)
            filter (where provider_status is not null) as provider_statuses
    from unmapped
    group by company_id, source, provider_event_type, unmapped_reason

),

final as (

    select
        company_id,
        source,
        provider_event_type,
        reason,
        events,
        first_received_at,
        last_received_at,
        raw_table,
        sample_raw_id,
        provider_statuses
    from counted

)

select * from final
