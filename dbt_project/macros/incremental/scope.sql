{#- The scope: per restaurant with canonical events loaded since a model's watermark,
    the time to recompute from (see the incremental_protocol doc). -#}

{#- The restaurants to recompute and from when: a list of [company_id, restaurant_id,
    recompute_from ISO] rows; none when the model is built in full. -#}
{% macro incremental_scope() -%}
    {#- `this` is unset in unit tests: they build in full. -#}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(scope_since(model_watermark(this.identifier))) }}
{%- endmacro %}

{#- The scope rows for canonical events loaded after `since_value` (none: every event,
    each restaurant from '-infinity'). -#}
{% macro scope_since(since_value) -%}
    {%- set changed = run_query(
        "select company_id, restaurant_id, "
        ~ (
            "to_char((min(occurred_at) - interval '" ~ var('incremental_margin_hours') ~ " hours')"
            ~ " at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
            if since_value is not none else "'-infinity'"
        )
        ~ " from " ~ canonical_events_relation()
        ~ (
            " where loaded_at > '" ~ since_value ~ "'::timestamptz"
            if since_value is not none else ""
        )
        ~ " group by company_id, restaurant_id order by 1, 2"
    ) -%}
    {%- set rows = [] -%}
    {%- for row in changed.rows -%}
        {%- do rows.append([row[0], row[1], row[2]]) -%}
    {%- endfor -%}
    {{ return(rows) }}
{%- endmacro %}

{#- Pre-hook of the incremental models that join the scope table (scope_relation): the
    scope as an analyzed temp table (dropped at commit), so the planner sees its real
    size. -#}
{% macro stage_scope() -%}
    {%- set scope = incremental_scope() -%}
    {%- if scope is none or scope | length == 0 -%}
    select 1
    {%- else -%}
    drop table if exists pg_temp.scope_restaurants;
    create temp table scope_restaurants on commit drop as
    select * from (values
        {%- for row in scope %}
        ('{{ row[0] | replace("'", "''") }}', '{{ row[1] | replace("'", "''") }}', '{{ row[2] }}'::timestamptz){{ "," if not loop.last }}
        {%- endfor %}
    ) as scope (company_id, restaurant_id, recompute_from);
    analyze scope_restaurants
    {%- endif -%}
{%- endmacro %}

{#- The scope as a relation: (company_id, restaurant_id, recompute_from). -#}
{% macro scope_relation(scope) -%}
    {%- if scope | length == 0 -%}
    (select null::text as company_id, null::text as restaurant_id,
        null::timestamptz as recompute_from where false)
    {%- else -%}
    pg_temp.scope_restaurants
    {%- endif -%}
{%- endmacro %}
