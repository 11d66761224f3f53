-- Careem order webhooks, typed; Careem's event_type names become canonical delivery statuses here and nowhere else.
with

source as (

    select * from {{ source('raw', 'webhook_events') }}
    where source = 'careem'

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
            when 'order.created' then 'received'
            when 'order.accepted' then 'accepted'
            when 'order.rejected' then 'rejected'
            when 'order.preparing' then 'preparing'
            when 'order.ready_for_pickup' then 'ready'
            when 'order.picked_up' then 'picked_up'
            when 'order.delivered' then 'delivered'
            when 'order.cancelled' then 'cancelled'
        end as delivery_status,
        upper(payload -> 'order' -> 'total' ->> 'currency') as currency
    from parsed

),

typed as (

    select
        'webhook_events'::text as raw_table,
        raw_id,
        event_id,
        source,
        company_id,
        nullif(payload -> 'order' ->> 'store_id', '') as restaurant_id,
        nullif(payload -> 'order' ->> 'id', '') as order_id,
        null::text as table_id,
        case when delivery_status is not null then 'delivery.status_changed' end as event_type,
        provider_event_type,
        coalesce({{ safe_timestamptz("payload ->> 'created_at'") }}, received_at) as occurred_at,
        received_at,
        null::integer as covers,
        'delivery'::text as channel,
        null::text as line_id,
        null::text as item_id,
        null::text as item_name,
        null::numeric as quantity,
        null::numeric as unit_price,
        {{ safe_numeric("payload -> 'order' -> 'total' ->> 'amount'") }} as amount,
        currency,
        null::text as payment_ref,
        delivery_status,
        jsonb_strip_nulls(jsonb_build_object(
            'status', delivery_status,
            'order_total', {{ safe_numeric("payload -> 'order' -> 'total' ->> 'amount'") }},
            'currency', currency,
            'provider', 'careem',
            'provider_event_type', provider_event_type,
            'provider_order_status', payload -> 'order' ->> 'status'
        )) as data
    from translated

),

final as (

    select * from typed

)

select * from final
