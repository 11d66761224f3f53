{#- The column holds only names of inbound sources in the source catalogue (each staging
    model's `config.meta.source.name`), so accepted sources are not listed a second time.
    delivery_platforms: only sources with a `delivery` entry; plus: further accepted names. -#}
{% test catalogued_source(model, column_name, delivery_platforms=false, plus=[]) %}
{%- set names = [] + plus %}
{%- if execute %}
    {%- for node in graph.nodes.values() %}
        {%- set entry = node.resource_type == 'model' and (node.config.meta or {}).get('source') %}
        {%- if entry and (entry.get('delivery') or not delivery_platforms) %}
            {%- do names.append(entry.name) %}
        {%- endif %}
    {%- endfor %}
    {%- if not names %}
        {{ exceptions.raise_compiler_error('catalogued_source: no model carries config.meta.source') }}
    {%- endif %}
{%- endif %}
select {{ column_name }} as unknown_source
from {{ model }}
where {{ column_name }} not in ('{{ names | unique | sort | join("', '") }}')
{% endtest %}
