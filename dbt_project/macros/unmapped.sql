{#- Why a landed event maps to nothing (the staging column unmapped_reason): null when it
    maps, or when its source's catalogue entry lists its name under ignored_event_types
    (or the platform flagged it as not applied); 'unknown_status' for a generic update
    (the entry's delivery.update_events) whose status word is outside the vocabulary;
    'unknown_event' for any other name. marts.unmapped_events counts every non-null one. -#}
{% macro unmapped_reason(mapped, not_applied='false') -%}
{%- set entry = (model.config.meta or {}).get('source') or {} %}
{%- set ignored = entry.get('ignored_event_types') or [] %}
{%- set update_events = (entry.get('delivery') or {}).get('update_events') or [] -%}
case
        when {{ mapped }} is not null then null
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

{#- Names from a catalogue entry as SQL string literals, comma-separated. -#}
{% macro sql_strings(values) -%}
    {%- for value in values -%}
        {{ sql_string(value) }}{% if not loop.last %}, {% endif %}
    {%- endfor -%}
{%- endmacro %}

{% macro sql_string(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}
