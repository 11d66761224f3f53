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
    {{ return(scope_since(model_watermark(this.identifier))) }}
{%- endmacro %}

{#- The newest canonical loaded_at `model` has processed; none when it has no record. -#}
{% macro model_watermark(model) -%}
    {%- set since = run_query(
        "select loaded_at from " ~ watermark_table() ~ " where model = '" ~ model ~ "'"
    ) -%}
    {{ return(since.columns[0].values()[0] if since.rows | length > 0 else none) }}
{%- endmacro %}

{#- The scope rows for canonical events loaded after `since_value` (none: every event). -#}
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

{#- The models that recompute whole orders, reading them from int_scope_orders. -#}
{% macro order_scope_models() -%}
    {{ return(['int_order_lines', 'int_delivery_orders', 'int_orders', 'int_bills']) }}
{%- endmacro %}

{#- The scope int_scope_orders stages: from the oldest watermark among the order models
    that exist (each then reads a superset of its own scope; recomputing an order again
    gives the same rows); none when none of them will run incrementally. -#}
{% macro order_models_scope() -%}
    {%- if not execute or flags.FULL_REFRESH -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set marks = [] -%}
    {%- for model in order_scope_models() -%}
        {%- if adapter.get_relation(this.database, this.schema, model) is not none -%}
            {%- do marks.append(model_watermark(model)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if marks | length == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(scope_since(none if none in marks else marks | min)) }}
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
    their events (index on canonical_events (restaurant_id, order_id)). Read from
    int_scope_orders when this invocation built it (each caller names it in a `depends_on`
    comment, so it is built first); otherwise, say a model selected on its own, found
    here. -#}
{% macro scoped_orders(scope) -%}
    {%- if scope | length == 0 -%}
    (select null::text as company_id, null::text as restaurant_id, null::text as order_id
        where false)
    {%- elif scope_orders_staged() -%}
    (select company_id, restaurant_id, order_id from {{ ref('int_scope_orders') }})
    {%- else -%}
    ({{ orders_in_scope(canonical_events_relation(), scope) }})
    {%- endif -%}
{%- endmacro %}

{#- The orders with an event in scope, from `relation` (canonical_events): what
    int_scope_orders stages, and what scoped_orders reads when it was not staged. -#}
{% macro orders_in_scope(relation, scope) -%}
    select distinct company_id, restaurant_id, order_id
    from {{ scoped_rows(relation, 'occurred_at', scope) }} as events
    where order_id is not null
{%- endmacro %}

{#- int_scope_orders marks itself with the invocation that built it (a table comment). -#}
{% macro mark_scope_orders() -%}
    comment on table {{ this }} is '{{ invocation_id }}'
{%- endmacro %}

{% macro scope_orders_staged() -%}
    {%- set relation = ref('int_scope_orders') -%}
    {%- set found = run_query(
        "select obj_description(to_regclass('" ~ relation ~ "'), 'pg_class')"
    ) -%}
    {{ return(found.columns[0].values()[0] == invocation_id) }}
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
