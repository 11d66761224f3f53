{#- Data tests on the rows the latest run wrote, for the sensor's runs (every 30 s): a
    test of a model with `meta.tests_scope` reads only those rows when the environment
    variable PARTNER_SIGNALS_TESTS_SCOPE is `latest_batch`. Otherwise (materialize, the
    nightly rebuild) every test reads the whole table, as dbt does by default.

    meta.tests_scope.latest_batch: <column>: the rows whose <column> is the newest
        (canonical_events: loaded_at, shared by every event of one run).
    meta.tests_scope.since: <column>: the rows of each restaurant in the latest batch from
        its recompute time on (the earliest occurred_at among its new events, less
        incremental_margin_hours): what an incremental run recomputes, by the protocol in
        macros/incremental (a date column: from two days before), read with scoped_rows.

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
    read whole tables (no scope asked for, or the model does not declare one). The batch
    and each restaurant's start are literals, as in scoped_rows: compared with a
    subquery's result the planner cannot estimate them, and after a full rebuild (one
    loaded_at for every row) it read the whole table through the wrong index (1.1 s of
    a 1.6 k-row batch on 0.5 M events, measured). -#}
{% macro tests_scope_subquery(relation) -%}
    {%- if env_var('PARTNER_SIGNALS_TESTS_SCOPE', 'all') != 'latest_batch' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set node = tests_scope_model(relation) -%}
    {%- set scope = ((node.config.meta or {}).get('tests_scope') or {}) if node else {} -%}
    {%- if not scope.get('latest_batch') and not scope.get('since') -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set events = canonical_events_relation() -%}
    {%- set newest = run_query("select max(loaded_at)::text from " ~ events) -%}
    {%- set batch = newest.columns[0].values()[0] if newest.rows | length > 0 else none -%}
    {%- if batch is none -%}
        {{ return("(select * from " ~ relation ~ " where false)") }}
    {%- endif -%}
    {%- if scope.get('latest_batch') -%}
        {{ return(
            "(select * from " ~ relation ~ " where " ~ adapter.quote(scope['latest_batch'])
            ~ " = '" ~ batch ~ "'::timestamptz)"
        ) }}
    {%- endif -%}
    {%- set column = scope['since'] -%}
    {%- set data_type = ((node.columns.get(column) or {}).get('data_type') or '') | lower -%}
    {%- set rows = run_query(
        "select company_id, restaurant_id, to_char((min(occurred_at) - interval '"
        ~ var('incremental_margin_hours') ~ " hours') at time zone 'UTC',"
        ~ " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') from " ~ events
        ~ " where loaded_at = '" ~ batch ~ "'::timestamptz"
        ~ " group by company_id, restaurant_id order by 1, 2"
    ) -%}
    {%- set batch_scope = [] -%}
    {%- for row in rows.rows -%}
        {%- do batch_scope.append([row[0], row[1], row[2]]) -%}
    {%- endfor -%}
    {#- A date compares as its midnight: two days back covers every local business
        date that the recompute time falls in, whatever the restaurant's time zone. -#}
    {{ return(scoped_rows(relation, adapter.quote(column), batch_scope,
        days_before=2 if data_type == 'date' else 0)) }}
{%- endmacro %}

{#- The model node whose relation this is: every model here is named as its relation
    (one dict lookup per test, not a walk over the graph). -#}
{% macro tests_scope_model(relation) -%}
    {%- set node = graph.nodes.get('model.' ~ project_name ~ '.' ~ relation.identifier) -%}
    {%- if node and node.schema == relation.schema -%}
        {{ return(node) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}
