"""dbt nodes in Dagster: keys by schema, groups by layer, descriptions with definitions."""

from __future__ import annotations

import dagster as dg

from pipelines.definitions import defs


def test_assets_keys_groups_and_descriptions() -> None:
    graph = defs.resolve_asset_graph()
    expected_groups = {
        "staging/stg_pos__order_events": "staging",
        "canonical/canonical_events": "canonical",
        "intermediate/int_visits": "canonical",
        "marts/fct_order_velocity": "workforce",
        "marts/fct_item_prep_times": "workforce",
        "marts/fct_table_occupancy": "workforce",
        "marts/fct_order_pacing": "crm",
        "marts/fct_time_to_pay": "crm",
    }
    for key, group in expected_groups.items():
        node = graph.get(dg.AssetKey.from_user_string(key))
        assert node.group_name == group, key
    pacing = graph.get(dg.AssetKey(["marts", "fct_order_pacing"]))
    assert pacing.description and "`seated_to_first_order_seconds`" in pacing.description
    assert pacing.freshness_policy is not None


def test_dbt_tests_are_asset_checks() -> None:
    checks = {key.to_user_string() for key in defs.resolve_asset_graph().asset_check_keys}
    assert "marts/fct_time_to_pay:not_null_fct_time_to_pay_status" in checks
    assert "canonical/canonical_events:raw_events_processed" in checks


def test_jobs_sensor_and_schedule_are_defined() -> None:
    assert defs.resolve_job_def("signals_job")
    assert defs.resolve_sensor_def("raw_events_sensor")
    assert defs.resolve_schedule_def("nightly_full_rebuild").cron_schedule == "30 3 * * *"
