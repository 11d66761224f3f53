{#- Watermarks: the newest canonical loaded_at each incremental model has processed
    (see the incremental_protocol doc). -#}

{#- The watermark table lives beside canonical_events, whose loaded_at it records. -#}
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

{#- on-run-start: the table exists before any model reads or writes it. -#}
{% macro create_watermark_table() -%}
    create schema if not exists canonical;
    create table if not exists {{ watermark_table() }} (
        model text primary key,
        loaded_at timestamptz not null,
        updated_at timestamptz not null default now()
    )
{%- endmacro %}

{#- Post-hook, in the model's own transaction: it has processed every canonical event
    loaded so far. -#}
{% macro record_watermark() -%}
    insert into {{ watermark_table() }} (model, loaded_at)
    select '{{ this.identifier }}', coalesce(max(loaded_at), '-infinity'::timestamptz)
    from {{ canonical_events_relation() }}
    on conflict (model) do update set loaded_at = excluded.loaded_at, updated_at = now()
{%- endmacro %}

{#- The newest canonical loaded_at `model` has processed; none when it has no record. -#}
{% macro model_watermark(model) -%}
    {%- set since = run_query(
        "select loaded_at from " ~ watermark_table() ~ " where model = '" ~ model ~ "'"
    ) -%}
    {{ return(since.columns[0].values()[0] if since.rows | length > 0 else none) }}
{%- endmacro %}
