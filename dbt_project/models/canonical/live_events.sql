-- Every canonical event that has landed, materialized or not: canonical_events plus the
-- raw rows above its per-raw-table watermark (the newest raw_id it holds), put in the
-- same envelope at read time. The "now" marts read this, so an event posted seconds ago
-- counts before the next dbt run. The tail is small (what landed since the last run) and
-- found through the raw tables' primary keys. canonical_events is referenced once so
-- PostgreSQL inlines it and filters on its indexes (restaurant_id, occurred_at).
{{ config(materialized='view') }}

{%- set staging_models = canonical_staging_models() %}

with

canonical_events as (

    select * from {{ ref('canonical_events') }}

),

{% for model, raw_table in staging_models %}
{{ model }} as (

    select {{ canonical_columns() | join(', ') }}
    from {{ ref(model) }}
    -- Scalar subqueries: evaluated once, then an index range on the raw primary key.
    -- Bounded on both sides so the planner estimates a narrow range (a one-sided bound
    -- on an unknown value is taken as a third of the table, and planned in parallel).
    where raw_id > (
        select coalesce(max(raw_id), 0) from {{ ref('canonical_events') }}
        where raw_table = '{{ raw_table }}'
    )
        and raw_id <= (select max(id) from {{ source('raw', raw_table) }})

),

{% endfor %}
unioned as (

    {% for model, _ in staging_models %}
    select * from {{ model }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

tail as (

    {{ canonical_envelope('unioned') | indent(4) }}

),

not_yet_loaded as (

    -- No anti-join with canonical_events needed: raw refuses a second row for an event,
    -- so an event above the watermark cannot be in canonical_events already.
    select tail.*, null::timestamptz as loaded_at
    from tail

),

final as (

    select
        id, type, schema_version, occurred_at, received_at, source, company_id,
        restaurant_id, order_id, data, event_id, provider_event_type, table_id, covers,
        channel, line_id, item_id, item_name, quantity, unit_price, amount, currency,
        payment_ref, delivery_status, raw_table, raw_id, loaded_at
    from canonical_events
    union all
    select * from not_yet_loaded

)

select * from final
