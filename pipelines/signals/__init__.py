"""The signals domain: dbt models as assets, the raw-events sensor, schedules and checks."""
