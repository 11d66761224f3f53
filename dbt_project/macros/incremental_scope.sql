{#- Incremental signals: each run recomputes, per restaurant with newly loaded canonical
    events, everything from `incremental_margin_hours` before the earliest occurred_at
    among them. Entities (orders, visits, days) are recomputed whole from all their
    events, so a late event gives the result in-order arrival gives; only an entity whose
    events lie further apart than the margin can go stale until the nightly full rebuild.
    Each model remembers the newest canonical loaded_at it has processed in
    canonical.dbt_incremental_watermarks (written by its post-hook, same transaction). -#}

{% macro watermark_table() -%}
    {{ return(adapter.quote_as_configured('canonical', 'schema') ~ '.dbt_incremental_watermarks') }}
{%- endmacro %}

{#- canonical_events, for models that read it only through the intermediates (a ref
    there would make their unit tests need it as an input). -#}
{% macro canonical_events_relation() -%}
    {{ return(api.Relation.create(
        database=target.database, schema='canonical', identifier='canonical_events'
    )) }}
{%- endmacro %}

{% macro create_watermark_table() -%}
    create schema if not exists canonical;
    create table if not exists {{ watermark_table() }} (
        model text primary key,
        loaded_at timestamptz not null,
        updated_at timestamptz not null default now()
    )
{%- endmacro %}

{#- After a model's build: it has processed every canonical event loaded so far. -#}
{% macro record_watermark() -%}
    insert into {{ watermark_table() }} (model, loaded_at)
    select '{{ this.identifier }}', coalesce(max(loaded_at), '-infinity'::timestamptz)
    from {{ canonical_events_relation() }}
    on conflict (model) do update set loaded_at = excluded.loaded_at, updated_at = now()
{%- endmacro %}

{#- The restaurants to recompute and from when: a list of [company_id, restaurant_id,
    recompute_from ISO] rows; none when the model is built in full. -#}
{% macro incremental_scope() -%}
    {#- `this` is unset in unit tests: they build in full. -#}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set since = run_query(
        "select loaded_at from " ~ watermark_table() ~ " where model = '" ~ this.identifier ~ "'"
    ) -%}
    {%- set since_value = since.columns[0].values()[0] if since.rows | length > 0 else none -%}
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

{#- Pre-hook of every incremental model: the scope and, for the models that recompute
    orders (`orders=true`), the orders with events in it, as analyzed temp tables (dropped
    at commit), so the planner sees their real sizes. -#}
{% macro stage_scope(orders=false) -%}
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
    {%- if orders %};
    drop table if exists pg_temp.scope_orders;
    create temp table scope_orders on commit drop as
    select distinct company_id, restaurant_id, order_id
    from {{ scoped_rows(canonical_events_relation(), 'occurred_at', scope) }} as events
    where order_id is not null;
    analyze scope_orders
    {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The rows of `relation` in scope: per restaurant, those with `column` at or after its
    recompute_from (less `before`, an interval such as '2 days'), one branch per
    restaurant with its time as a literal. Joined to the scope table instead, the planner
    cannot estimate `column >= scope.recompute_from` and scans the whole table: 25-40 s a
    model on 10 M events (measured) where the (restaurant_id, <column>) index reads a few
    thousand rows. -#}
{% macro scoped_rows(relation, column, scope, before=none) -%}
    {%- if scope | length == 0 -%}
    (select * from {{ relation }} where false)
    {%- else -%}
    (
        {%- for row in scope %}
        select * from {{ relation }}
        where company_id = '{{ row[0] | replace("'", "''") }}'
            and restaurant_id = '{{ row[1] | replace("'", "''") }}'
            and {{ column }} >= '{{ row[2] }}'::timestamptz
            {%- if before %} - interval '{{ before }}'{% endif %}
        {%- if not loop.last %}
        union all
        {%- endif %}
        {%- endfor %}
    )
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

{#- POS, payment and delivery orders with any event in scope: recomputed whole, from all
    their events (index on canonical_events (restaurant_id, order_id)). -#}
{% macro scoped_orders(scope) -%}
    {%- if scope | length == 0 -%}
    (select null::text as company_id, null::text as restaurant_id, null::text as order_id
        where false)
    {%- else -%}
    (select company_id, restaurant_id, order_id from pg_temp.scope_orders)
    {%- endif -%}
{%- endmacro %}

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
