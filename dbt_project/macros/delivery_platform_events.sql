{#- One delivery platform's order webhooks, typed: the whole staging model of Careem,
    Talabat, Deliveroo, Jahez and any platform like them. What differs between them
    (JSON paths, event names or status codes, status words, minor units) is the model's
    catalogue entry, `config.meta.source` in its yml; the platform's vocabulary becomes
    canonical delivery statuses here and nowhere else. An event name in `statuses` gives
    its status; a generic update (`update_events`, e.g. Careem's order.updated) gives the
    status its order's status word (at `order_status`) has in `status_words`. Anything
    else gets a null status and event_type, stays in staging and is counted, by its
    unmapped_reason, in marts.unmapped_events (unless the entry ignores it). -#}
{% macro delivery_platform_events() -%}
{#- The yml's meta is applied after the SQL is parsed, so at parse time the entry is
    empty; only source() has to be seen then, and every platform lands in webhook_events. -#}
{%- set entry = (model.config.meta or {}).get('source') or {} %}
{%- set platform = entry.get('delivery') or {} %}
{%- set statuses = platform.get('statuses') or {} %}
{%- set update_events = platform.get('update_events') or [] %}
{%- set status_words = platform.get('status_words') or {} %}
{%- set order_status = json_text('payload', platform.get('order_status')) %}
{%- set not_applied = json_text('payload', platform.get('not_applied_when_true')) ~ " = 'true'"
    if platform.get('not_applied_when_true') else 'false' %}
{%- set amount = safe_numeric(json_text('payload', platform.get('amount'))) %}
{%- if platform.get('amount_in_minor_units') %}
    {%- set amount = '(' ~ amount ~ ' / ' ~ minor_unit_divisor('currency') ~ ')' %}
{%- endif %}
with

source as (

    select * from {{ source('raw', 'webhook_events') }}
    where source = '{{ entry.get('name') }}'

),

parsed as (

    select
        id as raw_id,
        event_id,
        source,
        company_id,
        event_type as provider_event_type,
        received_at,
        parsed_body.payload
    from source
    {{ parse_payload('source') }}

),

translated as (

    select
        *,
        case
            {%- if platform.get('not_applied_when_true') %}
            -- The platform flags an update it did not apply to the order: no status change.
            when {{ not_applied }} then null
            {%- endif %}
            {%- for provider_status, canonical in statuses.items() %}
            when provider_event_type = {{ sql_string(provider_status) }} then '{{ canonical }}'
            {%- endfor %}
            {%- if update_events %}
            -- A generic update: the order's status word says what happened.
            when provider_event_type in ({{ sql_strings(update_events) }}) then
                case lower(btrim({{ order_status }}))
                    {%- for word, canonical in status_words.items() %}
                    when {{ sql_string(word | trim | lower) }} then '{{ canonical }}'
                    {%- endfor %}
                end
            {%- endif %}
        end as delivery_status,
        {{ not_applied }} as not_applied,
        upper({{ json_text('payload', platform.get('currency')) }}) as currency
    from parsed

),

typed as (

    select
        'webhook_events'::text as raw_table,
        raw_id,
        event_id,
        source,
        company_id,
        nullif({{ json_text('payload', (entry.get('restaurant') or {}).get('json')) }}, '') as restaurant_id,
        nullif({{ json_text('payload', platform.get('order_id')) }}, '') as order_id,
        null::text as table_id,
        case when delivery_status is not null then 'delivery.status_changed' end as event_type,
        provider_event_type,
        coalesce({{ safe_timestamptz(json_text('payload', platform.get('occurred_at'))) }}, received_at) as occurred_at,
        received_at,
        null::integer as covers,
        'delivery'::text as channel,
        null::text as line_id,
        null::text as item_id,
        null::text as item_name,
        null::numeric as quantity,
        null::numeric as unit_price,
        {{ amount }} as amount,
        currency,
        null::text as payment_ref,
        delivery_status,
        jsonb_strip_nulls(jsonb_build_object(
            'status', delivery_status,
            'order_total', {{ amount }},
            'currency', currency,
            'provider', '{{ entry.get('name') }}',
            'provider_event_type', provider_event_type,
            'provider_order_status', {{ order_status }}
        )) as data,
        not_applied
    from translated

),

final as (

    -- Here, not in typed: the reason reads the typed restaurant and order ids by name.
    select
        {{ canonical_columns() | join(',\n        ') }},
        {{ unmapped_reason('delivery_status', 'not_applied') | indent(8) }} as unmapped_reason
    from typed

)

select * from final
{%- endmacro %}

{#- `relation -> 'a' -> 'b' ->> 'c'`: the text at a JSON path (a list of keys); null::text
    when the catalogue entry declares no such path. -#}
{% macro json_text(relation, path) -%}
    {%- if not path -%}
        null::text
    {%- else -%}
        {{ relation }}
        {%- for key in path[:-1] %} -> '{{ key }}'{% endfor %} ->> '{{ path[-1] }}'
    {%- endif -%}
{%- endmacro %}
