-- Talabat order webhooks, typed; Talabat's eventType names become canonical delivery statuses here and nowhere else.
with

source as (

    select * from {{ source('raw', 'webhook_events') }}
    where source = 'talabat'

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
            when 'order_created' then 'received'
            when 'order_accepted' then 'accepted'
            when 'order_rejected' then 'rejected'
            when 'order_preparing' then 'preparing'
            when 'order_ready' then 'ready'
            when 'order_picked_up' then 'picked_up'
            when 'order_delivered' then 'delivered'
            when 'order_cancelled' then 'cancelled'
        end as delivery_status,
        upper(payload -> 'order' -> 'price' ->> 'currency') as currency
    from parsed

),

typed as (

    select
        'webhook_events'::text as raw_table,
        raw_id,
        event_id,
        source,
        company_id,
        nullif(payload -> 'order' ->> 'vendorCode', '') as restaurant_id,
        nullif(payload -> 'order' ->> 'code', '') as order_id,
        null::text as table_id,
        case when delivery_status is not null then 'delivery.status_changed' end as event_type,
        provider_event_type,
        coalesce({{ safe_timestamptz("payload ->> 'timestamp'") }}, received_at) as occurred_at,
        received_at,
        null::integer as covers,
        'delivery'::text as channel,
        null::text as line_id,
        null::text as item_id,
        null::text as item_name,
        null::numeric as quantity,
        null::numeric as unit_price,
        {{ safe_numeric("payload -> 'order' -> 'price' ->> 'grandTotal'") }} as amount,
        currency,
        null::text as payment_ref,
        delivery_status,
        jsonb_strip_nulls(jsonb_build_object(
            'status', delivery_status,
            'order_total', {{ safe_numeric("payload -> 'order' -> 'price' ->> 'grandTotal'") }},
            'currency', currency,
            'provider', 'talabat',
            'provider_event_type', provider_event_type,
            'provider_order_status', payload -> 'order' ->> 'status'
        )) as data
    from translated

),

final as (

    select * from typed

)

select * from final
