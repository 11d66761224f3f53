{#- Digits after the decimal point in a currency's minor unit (ISO 4217), for amounts sent in minor units. -#}
{% macro minor_unit_divisor(currency_expr) -%}
    (case
        when upper({{ currency_expr }}) in ('BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND') then 1000
        when upper({{ currency_expr }}) in (
            'BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY', 'KMF', 'KRW', 'PYG', 'RWF', 'UGX',
            'VND', 'VUV', 'XAF', 'XOF', 'XPF'
        ) then 1
        else 100
    end)
{%- endmacro %}
