-- Every source in one versioned envelope. Incremental: each run reads the raw rows above
-- the watermark (less a lookback, see canonical_lookback_ids) and appends the events not
-- already here. Raw rows never change, so an event, once written, is final; marts are
-- rebuilt from this table, which makes them independent of arrival order.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['raw_table', 'raw_id']},
            {'columns': ['restaurant_id', 'occurred_at']},
            {'columns': ['company_id', 'received_at']},
        ],
    )
}}

{%- set staging_models = [
    'stg_pos__order_events',
    'stg_stripe__payment_events',
    'stg_paypal__payment_events',
    'stg_careem__order_events',
    'stg_talabat__order_events',
    'stg_deliveroo__order_events',
    'stg_jahez__order_events',
] %}

{%- set watermarks = {'order_events': 0, 'webhook_events': 0} %}
{%- if is_incremental() and execute %}
    {%- for raw_table in watermarks %}
        {%- set result = run_query(
            "select coalesce(max(raw_id), 0) from " ~ this
            ~ " where raw_table = '" ~ raw_table ~ "'"
        ) %}
        {%- do watermarks.update({
            raw_table: [result.columns[0].values()[0] | int - var('canonical_lookback_ids') | int, 0] | max
        }) %}
    {%- endfor %}
{%- endif %}

with

{% for model in staging_models %}
{{ model }} as (

    select {{ canonical_columns() | join(', ') }}
    from {{ ref(model) }}
    {%- if is_incremental() %}
    where raw_id > {{ watermarks['order_events' if model.startswith('stg_pos') else 'webhook_events'] }}
    {%- endif %}

),

{% endfor %}
unioned as (

    {% for model in staging_models %}
    select * from {{ model }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

usable as (

    -- Only events the signals understand, about a known restaurant.
    select * from unioned
    where event_type is not null
        and restaurant_id is not null
        and (event_type not like 'order.%' or order_id is not null)
        and (event_type not like 'table.%' or table_id is not null)

),

enveloped as (

    select
        md5(source || ':' || company_id || ':' || event_id)::uuid as id,
        event_type as type,
        1 as schema_version,
        occurred_at,
        received_at,
        source,
        company_id,
        restaurant_id,
        order_id,
        data,
        event_id,
        provider_event_type,
        table_id,
        covers,
        channel,
        line_id,
        item_id,
        item_name,
        quantity,
        unit_price,
        amount,
        currency,
        payment_ref,
        delivery_status,
        raw_table,
        raw_id
    from usable

),

deduplicated as (

    -- The raw tables refuse duplicates already; this keeps the model safe if one slips in.
    select distinct on (id) *
    from enveloped
    order by id, raw_id

),

final as (

    select * from deduplicated
    {%- if is_incremental() %}
    where not exists (select 1 from {{ this }} as existing where existing.id = deduplicated.id)
    {%- endif %}

)

select * from final
