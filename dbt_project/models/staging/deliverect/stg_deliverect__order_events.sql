-- Deliverect order status updates, typed: the shared delivery-platform model; Deliverect's
-- paths and integer statuses are its catalogue entry in stg_deliverect__order_events.yml.
{{ delivery_platform_events() }}
