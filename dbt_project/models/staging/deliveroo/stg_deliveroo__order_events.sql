-- Deliveroo order webhooks, typed; Deliveroo's event names become canonical delivery statuses here and nowhere else. Totals arrive in minor units (fractional).
with

source as (

    select * from {{ source('raw', 'webhook_events') }}
    where source = 'deliveroo'

),

parsed as (

    select
        id as raw_id,
        event_id,
        source,
        company_id,
        event_type as provider_event_type,
        received_at,
        parsed_body.payload
    from source
    {{ parse_payload('source') }}

),

translated as (

    select
        *,
        case provider_event_type
            when 'order_placed' then 'received'
            when 'order_acknowledged' then 'accepted'
            when 'order_rejected' then 'rejected'
            when 'order_in_kitchen' then 'preparing'
            when 'order_ready_for_collection' then 'ready'
            when 'order_collected' then 'picked_up'
            when 'order_delivered' then 'delivered'
            when 'order_canceled' then 'cancelled'
        end as delivery_status,
        upper(payload -> 'body' -> 'order' -> 'total_price' ->> 'currency_code') as currency
    from parsed

),

typed as (

    select
        'webhook_events'::text as raw_table,
        raw_id,
        event_id,
        source,
        company_id,
        nullif(payload -> 'body' -> 'order' ->> 'location_id', '') as restaurant_id,
        nullif(payload -> 'body' -> 'order' ->> 'id', '') as order_id,
        null::text as table_id,
        case when delivery_status is not null then 'delivery.status_changed' end as event_type,
        provider_event_type,
        coalesce({{ safe_timestamptz("payload -> 'body' ->> 'occurred_at'") }}, received_at) as occurred_at,
        received_at,
        null::integer as covers,
        'delivery'::text as channel,
        null::text as line_id,
        null::text as item_id,
        null::text as item_name,
        null::numeric as quantity,
        null::numeric as unit_price,
        ({{ safe_numeric("payload -> 'body' -> 'order' -> 'total_price' ->> 'fractional'") }} / {{ minor_unit_divisor('currency') }}) as amount,
        currency,
        null::text as payment_ref,
        delivery_status,
        jsonb_strip_nulls(jsonb_build_object(
            'status', delivery_status,
            'order_total', ({{ safe_numeric("payload -> 'body' -> 'order' -> 'total_price' ->> 'fractional'") }} / {{ minor_unit_divisor('currency') }}),
            'currency', currency,
            'provider', 'deliveroo',
            'provider_event_type', provider_event_type,
            'provider_order_status', payload -> 'body' -> 'order' ->> 'status'
        )) as data
    from translated

),

final as (

    select * from typed

)

select * from final
