-- Careem order webhooks, typed: the shared delivery-platform model; Careem's paths and vocabulary are its
-- catalogue entry in stg_careem__order_events.yml.
{{ delivery_platform_events() }}
