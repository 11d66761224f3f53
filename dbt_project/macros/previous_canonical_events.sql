{#- The canonical_events table a full refresh replaces, when it has loaded_at: the rebuild
    keeps each event's loaded_at from it, so readers paging by loaded_at see no re-delivery.
    Returns none on a first build, in unit tests (overridden) and with
    preserve_loaded_at_on_full_refresh off. -#}
{% macro previous_canonical_events() -%}
    {%- if not execute or not var('preserve_loaded_at_on_full_refresh', true) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set relation = adapter.get_relation(this.database, this.schema, this.identifier) -%}
    {%- if relation is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute='name') | list -%}
    {{ return(relation if 'loaded_at' in columns else none) }}
{%- endmacro %}
