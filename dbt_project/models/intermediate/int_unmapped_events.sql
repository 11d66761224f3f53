-- The landed events no canonical type or status takes: one row per raw event whose staging
-- model gives it an unmapped_reason (a name, or a generic update's status word, outside
-- its source's vocabulary and not ignored on purpose; or a mapped event missing the
-- restaurant, order or table id it needs). They stay in raw; this is where
-- they are counted from (marts.unmapped_events), so none is dropped without a trace.
-- Incremental, append-only like canonical_events: raw rows never change, so a row, once
-- here, is final. Each run reads the raw ids above what it had already seen, less the
-- canonical look-back (ids are handed out before commit); what it had seen is the higher
-- of its own newest raw id and the newest in canonical_events as of its watermark (a run
-- with nothing unmapped still moves it on).
-- depends_on: {{ ref('canonical_events') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['raw_table', 'raw_id'], 'unique': True},
        ],
        post_hook=["{{ analyze_if_new() }}", "{{ record_watermark() }}"],
    )
}}

{%- set staging_models = canonical_staging_models() %}

{%- set lower_bounds = {'order_events': 0, 'webhook_events': 0} %}
{%- if is_incremental() and execute %}
    {%- set watermark = model_watermark(this.identifier) %}
    {%- for raw_table in lower_bounds %}
        {%- set seen = ["(select max(raw_id) from " ~ this ~ " where raw_table = '" ~ raw_table ~ "')"] %}
        {%- if watermark is not none %}
            {#- Read down the (raw_table, raw_id) index past the rows loaded since. -#}
            {%- do seen.append(
                "(select max(raw_id) from " ~ canonical_events_relation()
                ~ " where raw_table = '" ~ raw_table ~ "' and loaded_at <= '" ~ watermark ~ "'::timestamptz)"
            ) %}
        {%- endif %}
        {%- set result = run_query("select coalesce(greatest(" ~ seen | join(', ') ~ "), 0)") %}
        {%- do lower_bounds.update({
            raw_table: [result.columns[0].values()[0] | int - var('canonical_lookback_ids') | int, 0] | max
        }) %}
    {%- endfor %}
{%- endif %}

with

{% for model, raw_table in staging_models %}
{{ model }} as (

    select
        raw_table,
        raw_id,
        source,
        company_id,
        event_id,
        provider_event_type,
        unmapped_reason,
        case
            when unmapped_reason = 'unknown_status' then data ->> 'provider_order_status'
        end as provider_status,
        received_at
    from {{ ref(model) }} as staged
    where unmapped_reason is not null
    {%- if is_incremental() %}
        and staged.raw_id > {{ lower_bounds[raw_table] }}
        and not exists (
            select from {{ this }} as landed
            where landed.raw_table = '{{ raw_table }}' and landed.raw_id = staged.raw_id
        )
    {%- endif %}

),

{% endfor %}
final as (

    {% for model, _ in staging_models %}
    select * from {{ model }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from final
