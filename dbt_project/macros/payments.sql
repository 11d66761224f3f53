{#- Which canonical events pay for an order: the POS saying it was paid, a card or PayPal
    payment that succeeded, or a Stripe invoice for the order that was paid. One
    definition for int_bills and the partial index on canonical_events that finds an
    order's payments. -#}
{% macro is_payment_event() -%}
    ((source = 'pos' and type = 'order.paid')
        or (source in ('stripe', 'paypal') and type = 'payment.succeeded')
        or (source = 'stripe' and type = 'invoice.paid'))
{%- endmacro %}

{#- Post-hook of canonical_events: the partial index int_bills probes once a bill. dbt's
    `indexes` config has no predicate, and a named `create index if not exists` would
    find the name taken by the table a full refresh replaces; so look for the predicate.
    An index of an older predicate (before paid invoices settled a bill) no longer
    serves int_bills' probe and is replaced. -#}
{% macro ensure_payments_index() -%}
    do $$
    declare
        stale record;
    begin
        for stale in
            select indexname from pg_indexes
            where schemaname = '{{ this.schema }}' and tablename = '{{ this.identifier }}'
                and indexdef like '%order.paid%' and indexdef not like '%invoice.paid%'
        loop
            execute format('drop index %I.%I', '{{ this.schema }}', stale.indexname);
        end loop;
        if not exists (
            select from pg_indexes
            where schemaname = '{{ this.schema }}' and tablename = '{{ this.identifier }}'
                and indexdef like '%invoice.paid%'
        ) then
            create index on {{ this }} (restaurant_id, order_id) where {{ is_payment_event() }};
        end if;
    end
    $$
{%- endmacro %}
