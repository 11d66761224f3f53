{#- The columns every staging model hands to canonical_events, in one order, so they union. -#}
{% macro canonical_columns() -%}
    {{ return([
        'raw_table', 'raw_id', 'event_id', 'source', 'company_id', 'restaurant_id',
        'order_id', 'table_id', 'event_type', 'provider_event_type', 'occurred_at',
        'received_at', 'covers', 'channel', 'line_id', 'item_id', 'item_name', 'quantity',
        'unit_price', 'amount', 'currency', 'payment_ref', 'delivery_status', 'data',
    ]) }}
{%- endmacro %}
