{#- Why a landed event maps to nothing (the staging column unmapped_reason): null when it
    maps, or when its source's catalogue entry lists its name under ignored_event_types
    (or the platform flagged it as not applied); 'unknown_status' for a generic update
    (the entry's delivery.update_events) whose status word is outside the vocabulary;
    'unknown_event' for any other name; and for a mapped event that names no restaurant,
    or no order or table its type needs, the missing_id_reason. marts.unmapped_events
    counts every non-null one. Read in the model's last step, where the staged columns
    (event_type, restaurant_id, order_id, table_id) exist by name. -#}
{% macro unmapped_reason(mapped, not_applied='false') -%}
{%- set entry = (model.config.meta or {}).get('source') or {} %}
{%- set ignored = entry.get('ignored_event_types') or [] %}
{%- set update_events = (entry.get('delivery') or {}).get('update_events') or [] -%}
case
        when {{ mapped }} is not null then {{ missing_id_reason() | indent(8) }}
        when {{ not_applied }} then null
        {%- if ignored %}
        when provider_event_type in ({{ sql_strings(ignored) }}) then null
        {%- endif %}
        {%- if update_events %}
        when provider_event_type in ({{ sql_strings(update_events) }}) then 'unknown_status'
        {%- endif %}
        else 'unknown_event'
    end
{%- endmacro %}

{#- Why a mapped event cannot be placed: 'no_restaurant_id' (the payload names no
    restaurant), 'no_order_id' (an order or delivery event naming no order), 'no_table_id'
    (a table event naming no table); null when it can. One definition for the staging
    column above and the filter of canonical_envelope, so an event left out of
    canonical_events for a missing id is always counted. -#}
{% macro missing_id_reason() -%}
case
    when restaurant_id is null then 'no_restaurant_id'
    when (event_type like 'order.%' or event_type like 'delivery.%') and order_id is null
        then 'no_order_id'
    when event_type like 'table.%' and table_id is null then 'no_table_id'
end
{%- endmacro %}

{#- Names from a catalogue entry as SQL string literals, comma-separated. -#}
{% macro sql_strings(values) -%}
    {%- for value in values -%}
        {{ sql_string(value) }}{% if not loop.last %}, {% endif %}
    {%- endfor -%}
{%- endmacro %}

{% macro sql_string(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}

{#- The last step of every staging model: the canonical columns of `relation`, and why
    the event maps to nothing. An event naming a restaurant that is not its company's
    (another company's, or none registered) is quarantined: a null event_type keeps it out
    of canonical_events and every signal, and unmapped_reason 'foreign_restaurant' counts
    it in marts.unmapped_events. Ingest lands it all the same (the sender gets its 2xx:
    a refusal would only be retried); the company is the one whose secret signed it. It
    is decided when the event is first built, from ops.restaurants as it is then; the
    nightly full rebuild decides again (a restaurant registered since lets its events in).
    `mapped` and `not_applied` are as for unmapped_reason. -#}
{% macro staged_events(relation, mapped, not_applied='false') -%}
select
    {%- for column in canonical_columns() %}
    {%- if column == 'event_type' %}
    case when checked.foreign_restaurant then null else checked.event_type end as event_type,
    {%- else %}
    checked.{{ column }},
    {%- endif %}
    {%- endfor %}
    case
        when checked.foreign_restaurant then 'foreign_restaurant'
        else {{ unmapped_reason(mapped, not_applied) | indent(8) }}
    end as unmapped_reason
from (
    -- A join, not a correlated NOT EXISTS: the restaurants are few and hash once, where a
    -- subplan would probe the index once per event of a full rebuild. restaurant_id is
    -- the key of ops.restaurants, so no event is repeated.
    select
        staged.*,
        staged.restaurant_id is not null and owned.restaurant_id is null as foreign_restaurant
    from {{ relation }} as staged
    left join {{ source('ops', 'restaurants') }} as owned
        on owned.restaurant_id = staged.restaurant_id
        and owned.company_id = staged.company_id
) as checked
{%- endmacro %}
