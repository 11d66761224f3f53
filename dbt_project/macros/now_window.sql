{#- The look-back of the "now" views: events that occurred within now_window_hours of the
    read time. Keeps a one-restaurant read to an index range of one service. -#}
{% macro now_window(column) -%}
    {{ column }} > {{ current_ts() }} - interval '{{ var("now_window_hours") }} hours'
{%- endmacro %}
