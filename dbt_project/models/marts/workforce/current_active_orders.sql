-- Orders active now, over every event landed so far (live_events) within the now window:
-- POS orders opened and neither paid (from any source) nor cancelled, and delivery-platform
-- orders whose latest status is still before pickup (received, accepted, preparing, ready).
{{ config(materialized='view') }}

with

restaurants as (

    select * from {{ source('ops', 'restaurants') }}

),

live_events as (

    select * from {{ ref('live_events') }}

),

order_events as not materialized (

    -- Read by both order kinds: inlined into each so the restaurant filter reaches the
    -- (restaurant_id, occurred_at) index instead of materializing every restaurant.
    select
        id, company_id, restaurant_id, order_id, source, type, table_id, covers, channel,
        line_id, delivery_status, occurred_at
    from live_events
    where {{ now_window('occurred_at') }}
        and order_id is not null
        and (
            (source = 'pos' and type like 'order.%')
            or {{ is_payment_event() }}
            or type = 'delivery.status_changed'
        )

),

pos_orders as (

    select
        company_id,
        restaurant_id,
        order_id,
        'pos'::text as source,
        coalesce(
            min(occurred_at) filter (where source = 'pos' and type = 'order.created'),
            min(occurred_at) filter (where source = 'pos')
        ) as opened_at,
        (array_agg(channel order by occurred_at, id)
            filter (where type = 'order.created' and channel is not null))[1] as channel,
        (array_agg(table_id order by type = 'order.created' desc, occurred_at, id)
            filter (where source = 'pos' and table_id is not null))[1] as table_id,
        (array_agg(covers order by occurred_at, id)
            filter (where type = 'order.created' and covers is not null))[1] as covers,
        count(distinct line_id) filter (where type = 'order.item_added') as lines,
        min(occurred_at) filter (where type = 'order.bill_requested') as bill_requested_at,
        bool_or({{ is_payment_event() }}) as is_paid,
        bool_or(type in ('order.cancelled', 'order.rejected')) as is_cancelled
    from order_events
    where type <> 'delivery.status_changed'
    group by company_id, restaurant_id, order_id

),

delivery_orders as (

    select
        company_id,
        restaurant_id,
        order_id,
        source,
        coalesce(
            min(occurred_at) filter (where delivery_status = 'received'), min(occurred_at)
        ) as opened_at,
        (array_agg(delivery_status order by occurred_at desc, id desc))[1] as latest_status,
        bool_or(delivery_status in ('rejected', 'cancelled')) as is_cancelled
    from order_events
    where type = 'delivery.status_changed'
    group by company_id, restaurant_id, order_id, source

),

active as (

    select
        company_id, restaurant_id, order_id, source, channel, table_id, covers, lines,
        opened_at, bill_requested_at,
        case when bill_requested_at is null then 'open' else 'bill_requested' end as status
    from pos_orders
    where opened_at is not null and not is_paid and not is_cancelled
    union all
    select
        company_id, restaurant_id, order_id, source, 'delivery' as channel,
        null as table_id, null as covers, null as lines,
        opened_at, null as bill_requested_at, latest_status as status
    from delivery_orders
    where not is_cancelled and latest_status in ('received', 'accepted', 'preparing', 'ready')

),

final as (

    select
        active.restaurant_id::text as restaurant_id,
        active.company_id::text as company_id,
        active.order_id::text as order_id,
        active.source::text as source,
        active.channel::text as channel,
        active.table_id::text as table_id,
        active.covers::integer as covers,
        active.lines::integer as lines,
        active.opened_at::timestamptz as opened_at,
        active.bill_requested_at::timestamptz as bill_requested_at,
        active.status::text as status,
        greatest({{ seconds_between('active.opened_at', current_ts()) }}, 0)::numeric
            as elapsed_seconds,
        ({{ current_ts() }})::timestamptz as as_of
    from active
    inner join restaurants
        on active.restaurant_id = restaurants.restaurant_id
        and active.company_id = restaurants.company_id

)

select * from final
