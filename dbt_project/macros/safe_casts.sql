{#- Provider payloads are not ours: a malformed field becomes null instead of failing the build. -#}

{% macro safe_numeric(expr) -%}
    (case when ({{ expr }}) ~ '^\s*-?[0-9]+(\.[0-9]+)?\s*$' then ({{ expr }})::numeric end)
{%- endmacro %}

{% macro safe_integer(expr) -%}
    (case when ({{ expr }}) ~ '^\s*-?[0-9]{1,9}\s*$' then ({{ expr }})::integer end)
{%- endmacro %}

{#- The regex keeps the exception-handling function (ops.try_timestamptz, a migration)
    off values that cannot be timestamps; the function catches what a regex cannot
    (2026-02-30, hour 29). -#}
{% macro safe_timestamptz(expr) -%}
    (case
        when ({{ expr }}) ~ '^[0-9]{4}-[0-1][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-5][0-9]'
            then ops.try_timestamptz({{ expr }})
    end)
{%- endmacro %}

{% macro safe_epoch(expr) -%}
    (case when ({{ expr }}) ~ '^\s*[0-9]{9,11}\s*$' then to_timestamp(({{ expr }})::bigint) end)
{%- endmacro %}
