{#- The raw body parsed as JSON once per row. A CTE with `body::jsonb as payload` is
    inlined by PostgreSQL and every `payload -> ...` then parses the body again: 15 or
    more parses a POS row, 4x the cost of the whole staging query (measured). A lateral
    subquery with OFFSET 0 is never inlined, so the body is parsed once; filters on the
    raw columns (raw_id for incremental runs) still reach the raw table's indexes. -#}
{% macro parse_payload(relation) -%}
cross join lateral (select {{ relation }}.body::jsonb as payload offset 0) as parsed_body
{%- endmacro %}
