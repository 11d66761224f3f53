{#- A duration or amount is never below zero (nulls are allowed; test them separately). -#}
{% test non_negative(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} < 0
{% endtest %}
