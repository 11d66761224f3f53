-- POS order and table events, typed. POS event names are already canonical; unknown
-- types keep event_type null, are left out of canonical_events and counted in
-- marts.unmapped_events.
with

source as (

    select * from {{ source('raw', 'order_events') }}
    where source = 'pos'

),

parsed as (

    select
        id as raw_id,
        event_id,
        source,
        company_id,
        restaurant_id,
        event_type as provider_event_type,
        occurred_at,
        received_at,
        parsed_body.payload
    from source
    {{ parse_payload('source') }}

),

typed as (

    select
        'order_events'::text as raw_table,
        raw_id,
        event_id,
        source,
        company_id,
        restaurant_id,
        nullif(payload ->> 'order_id', '') as order_id,
        nullif(payload ->> 'table_id', '') as table_id,
        case
            when provider_event_type in (
                'order.created',
                'order.item_added',
                'order.item_fired',
                'order.item_ready',
                'order.item_served',
                'order.bill_requested',
                'order.paid',
                'order.cancelled',
                'order.rejected',
                'table.seated',
                'table.cleared'
            ) then provider_event_type
        end as event_type,
        provider_event_type,
        occurred_at,
        received_at,
        {{ safe_integer("payload -> 'data' ->> 'covers'") }} as covers,
        payload -> 'data' ->> 'channel' as channel,
        payload -> 'data' ->> 'line_id' as line_id,
        payload -> 'data' ->> 'item_id' as item_id,
        payload -> 'data' ->> 'item_name' as item_name,
        {{ safe_numeric("payload -> 'data' ->> 'quantity'") }} as quantity,
        {{ safe_numeric("payload -> 'data' ->> 'unit_price'") }} as unit_price,
        {{ safe_numeric("payload -> 'data' ->> 'amount'") }} as amount,
        upper(payload -> 'data' ->> 'currency') as currency,
        payload -> 'data' ->> 'payment_ref' as payment_ref,
        null::text as delivery_status,
        coalesce(payload -> 'data', '{}'::jsonb)
        || jsonb_strip_nulls(jsonb_build_object('table_id', payload ->> 'table_id')) as data
    from parsed

),

final as (

    {{ staged_events('typed', 'event_type') | indent(4) }}

)

select * from final
