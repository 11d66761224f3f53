"""Dagster definitions for partner-signals: dbt models as assets, sensors, schedules, checks."""
