-- PayPal capture events, typed; PayPal's event names become canonical payment types here.
-- The restaurant and order travel in the capture's custom_id as `restaurant_id:order_id`.
with

source as (

    select * from {{ source('raw', 'webhook_events') }}
    where source = 'paypal'

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

resources as (

    select
        *,
        payload -> 'resource' as resource,
        payload -> 'resource' ->> 'custom_id' as custom_id
    from parsed

),

typed as (

    select
        'webhook_events'::text as raw_table,
        raw_id,
        event_id,
        source,
        company_id,
        nullif(split_part(custom_id, ':', 1), '') as restaurant_id,
        case
            when strpos(custom_id, ':') > 0
                then nullif(substr(custom_id, strpos(custom_id, ':') + 1), '')
        end as order_id,
        null::text as table_id,
        case provider_event_type
            when 'PAYMENT.CAPTURE.COMPLETED' then 'payment.succeeded'
            when 'PAYMENT.CAPTURE.DENIED' then 'payment.failed'
            when 'PAYMENT.CAPTURE.DECLINED' then 'payment.failed'
            when 'PAYMENT.CAPTURE.REFUNDED' then 'payment.refunded'
        end as event_type,
        provider_event_type,
        coalesce(
            {{ safe_timestamptz("resource ->> 'create_time'") }},
            {{ safe_timestamptz("payload ->> 'create_time'") }},
            received_at
        ) as occurred_at,
        received_at,
        null::integer as covers,
        null::text as channel,
        null::text as line_id,
        null::text as item_id,
        null::text as item_name,
        null::numeric as quantity,
        null::numeric as unit_price,
        {{ safe_numeric("resource -> 'amount' ->> 'value'") }} as amount,
        upper(resource -> 'amount' ->> 'currency_code') as currency,
        resource ->> 'id' as payment_ref,
        null::text as delivery_status,
        jsonb_strip_nulls(jsonb_build_object(
            'amount', {{ safe_numeric("resource -> 'amount' ->> 'value'") }},
            'currency', upper(resource -> 'amount' ->> 'currency_code'),
            'payment_ref', resource ->> 'id',
            'provider', 'paypal',
            'provider_event_type', provider_event_type
        )) as data
    from resources

),

final as (

    {{ staged_events('typed', 'event_type') | indent(4) }}

)

select * from final
