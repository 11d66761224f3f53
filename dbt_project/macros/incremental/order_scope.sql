{#- The order scope: the orders an incremental run recomputes whole, staged once a run in
    int_scope_orders for the models that read it (see the incremental_protocol doc). -#}

{#- The models that recompute whole orders: those that depend on int_scope_orders (each
    names it in a `depends_on` comment), as graph nodes. Derived, not listed: a model that
    calls scoped_orders without that comment fails at run time ("unable to infer all
    dependencies"), so the models that can read the staged orders are exactly these. -#}
{% macro order_scope_models() -%}
    {%- set scope_orders_id = 'model.' ~ project_name ~ '.int_scope_orders' -%}
    {%- set models = [] -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model' and scope_orders_id in node.depends_on.nodes -%}
            {%- do models.append(node) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(models | sort(attribute='name')) }}
{%- endmacro %}

{#- The scope int_scope_orders stages: from the oldest watermark among the order models
    that exist (each then reads a superset of its own scope; recomputing an order again
    gives the same rows); none when none of them will run incrementally. -#}
{% macro order_models_scope() -%}
    {%- if not execute or flags.FULL_REFRESH -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set marks = [] -%}
    {%- for node in order_scope_models() -%}
        {%- if adapter.get_relation(node.database, node.schema, node.alias) is not none -%}
            {%- do marks.append(model_watermark(node.alias)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if marks | length == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(scope_since(none if none in marks else marks | min)) }}
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

{#- Post-hook of int_scope_orders: it marks itself with the invocation that built it (a
    table comment). -#}
{% macro mark_scope_orders() -%}
    comment on table {{ this }} is '{{ invocation_id }}'
{%- endmacro %}

{#- Whether int_scope_orders was built by this invocation (its table comment). A stale
    one, left by an earlier run, holds another run's orders. -#}
{% macro scope_orders_staged() -%}
    {%- set relation = ref('int_scope_orders') -%}
    {%- set found = run_query(
        "select obj_description(to_regclass('" ~ relation ~ "'), 'pg_class')"
    ) -%}
    {{ return(found.columns[0].values()[0] == invocation_id) }}
{%- endmacro %}
