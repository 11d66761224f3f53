{#- The columns every staging model hands to canonical_events, in one order, so they union. -#}
{% macro canonical_columns() -%}
    {{ return([
        'raw_table', 'raw_id', 'event_id', 'source', 'company_id', 'restaurant_id',
        'order_id', 'table_id', 'event_type', 'provider_event_type', 'occurred_at',
        'received_at', 'covers', 'channel', 'line_id', 'item_id', 'item_name', 'quantity',
        'unit_price', 'amount', 'currency', 'payment_ref', 'delivery_status', 'data',
    ]) }}
{%- endmacro %}

{#- The staging models canonical_events and live_events union: one per source. -#}
{% macro canonical_staging_models() -%}
    {{ return([
        'stg_pos__order_events',
        'stg_stripe__payment_events',
        'stg_paypal__payment_events',
        'stg_careem__order_events',
        'stg_talabat__order_events',
        'stg_deliveroo__order_events',
        'stg_jahez__order_events',
    ]) }}
{%- endmacro %}

{#- Staged rows -> the canonical envelope: only events the signals understand, about a
    restaurant, with the deterministic id. One definition for canonical_events and the
    not-yet-materialized tail of live_events. -#}
{% macro canonical_envelope(relation) -%}
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
    from {{ relation }}
    where event_type is not null
        and restaurant_id is not null
        and (event_type not like 'order.%' or order_id is not null)
        and (event_type not like 'table.%' or table_id is not null)
{%- endmacro %}
