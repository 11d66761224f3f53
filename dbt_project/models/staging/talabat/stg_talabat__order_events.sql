-- Talabat order webhooks, typed: the shared delivery-platform model; Talabat's paths and vocabulary are its
-- catalogue entry in stg_talabat__order_events.yml.
{{ delivery_platform_events() }}
