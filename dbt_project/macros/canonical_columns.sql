{#- The columns every staging model hands to canonical_events, in one order, so they union. -#}
{% macro canonical_columns() -%}
    {{ return([
        'raw_table', 'raw_id', 'event_id', 'source', 'company_id', 'restaurant_id',
        'order_id', 'table_id', 'event_type', 'provider_event_type', 'occurred_at',
        'received_at', 'covers', 'channel', 'line_id', 'item_id', 'item_name', 'quantity',
        'unit_price', 'amount', 'currency', 'payment_ref', 'delivery_status', 'data',
    ]) }}
{%- endmacro %}

{#- The staging models canonical_events and live_events union, one per inbound source, as
    [model, raw table] pairs. Each source's definition is its staging model's catalogue
    entry (`config.meta.source` in its yml) and the raw table comes from it. dbt needs
    every ref() at parse time, when `graph` is still empty, so the model names are listed
    here once; at execution they are checked against the entries, and a model with an
    entry missing here, or one listed without an entry, fails the compile by name.
    Unit tests override this macro with the sources they exercise (a unit test's manifest
    holds only its fixtures), so adding a source edits no unit test. -#}
{% macro canonical_staging_models() -%}
    {%- set listed = [
        'stg_pos__order_events',
        'stg_stripe__payment_events',
        'stg_paypal__payment_events',
        'stg_careem__order_events',
        'stg_talabat__order_events',
        'stg_deliveroo__order_events',
        'stg_jahez__order_events',
        'stg_deliverect__order_events',
    ] %}
    {%- set pairs = [] %}
    {%- if not execute %}
        {#- Parsing: only the refs are recorded. -#}
        {%- for name in listed %}{% do pairs.append([name, 'webhook_events']) %}{% endfor %}
        {{ return(pairs) }}
    {%- endif %}
    {%- set declared = {} %}
    {%- for node in graph.nodes.values() %}
        {%- set entry = node.resource_type == 'model' and (node.config.meta or {}).get('source') %}
        {%- if entry %}{% do declared.update({node.name: entry.raw_table}) %}{% endif %}
    {%- endfor %}
    {%- set unlisted = declared.keys() | reject('in', listed) | list %}
    {%- set undeclared = listed | reject('in', declared) | list %}
    {%- if unlisted or undeclared %}
        {{ exceptions.raise_compiler_error(
            'canonical_staging_models: add ' ~ unlisted ~ ' to the list; '
            ~ undeclared ~ ' carry no config.meta.source (a unit test overrides this macro)'
        ) }}
    {%- endif %}
    {%- for name in listed %}{% do pairs.append([name, declared[name]]) %}{% endfor %}
    {{ return(pairs) }}
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
    -- A mapped event missing an id it needs is counted in marts.unmapped_events instead.
    where event_type is not null
        and {{ missing_id_reason() | indent(8) }} is null
{%- endmacro %}
