{#- Planner helpers for the incremental models (see the incremental_protocol doc). -#}

{#- A table just built has no planner statistics, and the next model's joins on it go
    quadratic without them: analyze it when it has never been analyzed (a first build or
    a full refresh). Incremental runs leave it to autovacuum. -#}
{% macro analyze_if_new() -%}
    do $$
    begin
        if not exists (
            select 1 from pg_stats
            where schemaname = '{{ this.schema }}' and tablename = '{{ this.identifier }}'
        ) then
            analyze {{ this }};
        end if;
    end
    $$
{%- endmacro %}

{#- Incremental marts join small recomputed slices to aggregates; the planner's row
    estimates for those joins are far too low, and a nested loop then re-runs an
    aggregate per row (minutes instead of a second). Hash joins only, for this model's
    transaction, on incremental runs. -#}
{% macro hash_joins_when_incremental() -%}
    {%- if execute and this is not none and is_incremental() -%}
    set local enable_nestloop = off
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
