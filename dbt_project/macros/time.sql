{#- The read-time clock. Views that show running clocks call this; unit tests override it. -#}
{% macro current_ts() -%}
    now()
{%- endmacro %}

{#- Local wall-clock time of an instant in a restaurant's time zone. -#}
{% macro local_time(ts, timezone) -%}
    ({{ ts }} at time zone {{ timezone }})
{%- endmacro %}

{#- The business day an instant belongs to: local date, with hours before the day start counted to the day before. -#}
{% macro business_date(ts, timezone) -%}
    ((({{ ts }} at time zone {{ timezone }}) - interval '{{ var("business_day_start_hours") }} hours')::date)
{%- endmacro %}

{% macro seconds_between(start_ts, end_ts) -%}
    round(extract(epoch from ({{ end_ts }}) - ({{ start_ts }})), 3)
{%- endmacro %}
