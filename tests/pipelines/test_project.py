"""Connection plumbing: dbt's profile and Dagster's storage from the project's libpq URL."""

from __future__ import annotations

from pipelines.instance import dagster_storage_url
from pipelines.project import dbt_env


def test_dbt_env_from_a_tcp_url() -> None:
    env = dbt_env("postgresql://ps:s3cret@db.internal:6543/signals?sslmode=require")
    assert env["PARTNER_SIGNALS_DBT_HOST"] == "db.internal"
    assert env["PARTNER_SIGNALS_DBT_PORT"] == "6543"
    assert env["PARTNER_SIGNALS_DBT_USER"] == "ps"
    assert env["PARTNER_SIGNALS_DBT_PASSWORD"] == "s3cret"
    assert env["PARTNER_SIGNALS_DBT_DBNAME"] == "signals"
    assert env["PARTNER_SIGNALS_DBT_SSLMODE"] == "require"


def test_dbt_env_from_the_embedded_servers_socket_url() -> None:
    env = dbt_env("postgresql://postgres:@/postgres?host=/tmp/pg-sock")
    assert env["PARTNER_SIGNALS_DBT_HOST"] == "/tmp/pg-sock"
    assert env["PARTNER_SIGNALS_DBT_PORT"] == "5432"
    assert env["PARTNER_SIGNALS_DBT_USER"] == "postgres"
    assert env["PARTNER_SIGNALS_DBT_PASSWORD"] == ""
    assert env["PARTNER_SIGNALS_DBT_DBNAME"] == "postgres"


def test_dagster_storage_url_names_the_driver_and_schema() -> None:
    assert dagster_storage_url("postgresql://postgres:@/postgres?host=/tmp/s") == (
        "postgresql+psycopg2://postgres:@/postgres?host=/tmp/s&options=-csearch_path%3Ddagster"
    )
    assert dagster_storage_url("postgresql://u@h:5432/d") == (
        "postgresql+psycopg2://u@h:5432/d?options=-csearch_path%3Ddagster"
    )
