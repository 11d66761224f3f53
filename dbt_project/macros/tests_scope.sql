{#- Data tests on the rows the latest run wrote, for the sensor's runs (every 30 s): a
    test of a model with `meta.tests_scope` reads only those rows when the environment
    variable PARTNER_SIGNALS_TESTS_SCOPE is `latest_batch`. Otherwise (materialize, the
    nightly rebuild) every test reads the whole table, as dbt does by default.

    meta.tests_scope.latest_batch: <column>: the rows whose <column> is the newest
        (canonical_events: loaded_at, shared by every event of one run).
    meta.tests_scope.since: <column>: the rows of each restaurant in the latest batch from
        its recompute time on (the earliest occurred_at among its new events, less
        incremental_margin_hours): what an incremental run recomputes, by the protocol in
        macros/incremental (a date column: from the day before).

    It overrides dbt's own get_where_subquery (tests/generic call it on their `model`);
    a test's `where` config still applies on top. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set scoped = tests_scope_subquery(relation) if execute else none -%}
    {%- if scoped is none and not where -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set filtered -%}
        (select * from {{ scoped if scoped is not none else relation }} as scoped
        {%- if where %} where {{ where }}{% endif %}) dbt_subquery
    {%- endset -%}
    {{ return(filtered) }}
{%- endmacro %}

{#- The latest batch's rows of `relation` as a parenthesised subquery, or none when tests
    read whole tables (no scope asked for, or the model does not declare one). -#}
{% macro tests_scope_subquery(relation) -%}
    {%- if env_var('PARTNER_SIGNALS_TESTS_SCOPE', 'all') != 'latest_batch' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set node = tests_scope_model(relation) -%}
    {%- set scope = ((node.config.meta or {}).get('tests_scope') or {}) if node else {} -%}
    {%- if scope.get('latest_batch') -%}
        {%- set column = adapter.quote(scope['latest_batch']) -%}
        {{ return(
            "(select * from " ~ relation ~ " where " ~ column ~ " = (select max(" ~ column
            ~ ") from " ~ relation ~ "))"
        ) }}
    {%- elif scope.get('since') -%}
        {%- set column = scope['since'] -%}
        {%- set data_type = ((node.columns.get(column) or {}).get('data_type') or '') | lower -%}
        {%- set from = "(batch.recompute_from - interval '1 day')::date" if data_type == 'date'
            else "batch.recompute_from" -%}
        {%- set events = canonical_events_relation() -%}
        {{ return(
            "(select model_rows.* from " ~ relation ~ " as model_rows"
            ~ " join (select company_id, restaurant_id, min(occurred_at) - interval '"
            ~ var('incremental_margin_hours') ~ " hours' as recompute_from"
            ~ " from " ~ events ~ " where loaded_at = (select max(loaded_at) from " ~ events ~ ")"
            ~ " group by company_id, restaurant_id) as batch"
            ~ " on model_rows.company_id = batch.company_id"
            ~ " and model_rows.restaurant_id = batch.restaurant_id"
            ~ " and model_rows." ~ adapter.quote(column) ~ " >= " ~ from ~ ")"
        ) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#- The model node whose relation this is (tests name their model by relation). -#}
{% macro tests_scope_model(relation) -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model'
            and node.schema == relation.schema
            and (node.alias or node.name) == relation.identifier -%}
            {{ return(node) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(none) }}
{%- endmacro %}
