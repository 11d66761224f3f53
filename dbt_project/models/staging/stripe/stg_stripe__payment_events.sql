-- Stripe events, typed; Stripe's event names become canonical payment and invoice types
-- here and nowhere else. Amounts arrive in the currency's minor unit and leave in major
-- units. An invoice is a bill with a lifecycle of its own (draft, open, paid, void,
-- uncollectible): its events stay invoice.* so a voided one is never a failed payment.
with

source as (

    select * from {{ source('raw', 'webhook_events') }}
    where source = 'stripe'

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

objects as (

    select
        raw_id,
        event_id,
        source,
        company_id,
        provider_event_type,
        received_at,
        payload,
        payload -> 'data' -> 'object' as object,
        payload -> 'data' -> 'object' -> 'metadata' as metadata
    from parsed

),

translated as (

    select
        *,
        case provider_event_type
            when 'payment_intent.succeeded' then 'payment.succeeded'
            when 'payment_intent.payment_failed' then 'payment.failed'
            when 'charge.refunded' then 'payment.refunded'
            when 'invoice.created' then 'invoice.created'
            when 'invoice.finalized' then 'invoice.finalized'
            when 'invoice.paid' then 'invoice.paid'
            when 'invoice.payment_failed' then 'invoice.payment_failed'
            when 'invoice.voided' then 'invoice.voided'
            when 'invoice.marked_uncollectible' then 'invoice.marked_uncollectible'
        end as event_type,
        case provider_event_type
            when 'payment_intent.succeeded'
                then coalesce(object ->> 'amount_received', object ->> 'amount')
            when 'payment_intent.payment_failed' then object ->> 'amount'
            when 'charge.refunded' then object ->> 'amount_refunded'
            when 'invoice.paid' then object ->> 'amount_paid'
            else object ->> 'amount_due'
        end as amount_minor,
        upper(object ->> 'currency') as currency,
        case
            when object ->> 'object' = 'payment_intent' then object ->> 'id'
            else coalesce(object ->> 'payment_intent', object ->> 'id')
        end as payment_ref
    from objects

),

typed as (

    select
        'webhook_events'::text as raw_table,
        raw_id,
        event_id,
        source,
        company_id,
        nullif(metadata ->> 'restaurant_id', '') as restaurant_id,
        nullif(metadata ->> 'order_id', '') as order_id,
        nullif(metadata ->> 'table_id', '') as table_id,
        event_type,
        provider_event_type,
        coalesce({{ safe_epoch("payload ->> 'created'") }}, received_at) as occurred_at,
        received_at,
        null::integer as covers,
        null::text as channel,
        null::text as line_id,
        null::text as item_id,
        null::text as item_name,
        null::numeric as quantity,
        null::numeric as unit_price,
        {{ safe_numeric('amount_minor') }} / {{ minor_unit_divisor('currency') }} as amount,
        currency,
        payment_ref,
        null::text as delivery_status,
        jsonb_strip_nulls(jsonb_build_object(
            'amount', {{ safe_numeric('amount_minor') }} / {{ minor_unit_divisor('currency') }},
            'currency', currency,
            'payment_ref', payment_ref,
            'provider', 'stripe',
            'provider_event_type', provider_event_type,
            'table_id', nullif(metadata ->> 'table_id', ''),
            'failure_reason', case
                when provider_event_type = 'payment_intent.payment_failed'
                    then object -> 'last_payment_error' ->> 'code'
                when provider_event_type = 'invoice.payment_failed' then 'invoice_payment_failed'
            end
        ) || case when object ->> 'object' = 'invoice' then jsonb_strip_nulls(jsonb_build_object(
            -- The invoice as Stripe last told it: its status word is Stripe's own, which
            -- is already the lifecycle (draft, open, paid, void, uncollectible).
            'invoice_id', object ->> 'id',
            'invoice_number', object ->> 'number',
            'invoice_status', object ->> 'status',
            'amount_due', {{ safe_numeric("object ->> 'amount_due'") }} / {{ minor_unit_divisor('currency') }},
            'amount_paid', {{ safe_numeric("object ->> 'amount_paid'") }} / {{ minor_unit_divisor('currency') }},
            'amount_remaining',
                {{ safe_numeric("object ->> 'amount_remaining'") }} / {{ minor_unit_divisor('currency') }},
            'visit_id', nullif(metadata ->> 'visit_id', '')
        )) else '{}'::jsonb end) as data
    from translated

),

final as (

    {{ staged_events('typed', 'event_type') | indent(4) }}

)

select * from final
