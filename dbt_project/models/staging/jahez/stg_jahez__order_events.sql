-- Jahez order webhooks, typed: the shared delivery-platform model; Jahez's paths and vocabulary are its
-- catalogue entry in stg_jahez__order_events.yml.
{{ delivery_platform_events() }}
