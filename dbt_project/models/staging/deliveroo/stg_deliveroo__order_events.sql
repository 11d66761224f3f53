-- Deliveroo order webhooks, typed: the shared delivery-platform model; Deliveroo's paths and vocabulary are its
-- catalogue entry in stg_deliveroo__order_events.yml.
{{ delivery_platform_events() }}
