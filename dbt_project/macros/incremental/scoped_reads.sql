{#- Scoped reads: a relation's rows in scope, each restaurant's start as a literal (see
    the incremental_protocol doc). -#}

{#- The rows of `relation` in scope: per restaurant, those with `column` at or after its
    recompute_from less `days_before` days, one branch per restaurant with its time as a
    literal. Joined to the scope table instead, the planner cannot estimate
    `column >= scope.recompute_from` and scans the whole table: 25-40 s a model on 10 M
    events (measured) where the (restaurant_id, <column>) index reads a few thousand
    rows. The subtraction is done here: `literal - interval` is not a constant to the
    planner either, and it then prefers an index that reads the restaurant's whole
    history. -#}
{% macro scoped_rows(relation, column, scope, days_before=0) -%}
    {%- if scope | length == 0 -%}
    (select * from {{ relation }} where false)
    {%- else -%}
    (
        {%- for row in scope %}
        select * from {{ relation }}
        where company_id = '{{ row[0] | replace("'", "''") }}'
            and restaurant_id = '{{ row[1] | replace("'", "''") }}'
            and {{ column }} >= '{{ days_earlier(row[2], days_before) }}'::timestamptz
        {%- if not loop.last %}
        union all
        {%- endif %}
        {%- endfor %}
    )
    {%- endif -%}
{%- endmacro %}

{#- An ISO UTC time from incremental_scope (or '-infinity'), `days` days earlier. -#}
{% macro days_earlier(iso, days) -%}
    {%- if days == 0 or iso == '-infinity' -%}
        {{ return(iso) }}
    {%- endif -%}
    {%- set fmt = '%Y-%m-%dT%H:%M:%S.%fZ' -%}
    {%- set parsed = modules.datetime.datetime.strptime(iso, fmt) -%}
    {{ return((parsed - modules.datetime.timedelta(days=days)).strftime(fmt)) }}
{%- endmacro %}
