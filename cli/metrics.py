"""The operator's Prometheus endpoint: the deliveries process's own metrics, the database
gauges (partner_signals/observability.py) and any extra collectors, on one port."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import start_http_server
from prometheus_client.registry import Collector

from partner_signals.db import libpq_url
from partner_signals.observability import gauges_registry
from partner_signals.settings import Settings, get_settings


def signals_runs_collector() -> Collector:
    """`partner_signals_signals_runs_failed_in_a_row` and the last success's age, from
    the project's Dagster instance (deploy/prometheus/alerts.yml alerts on them)."""
    import dagster as dg

    from pipelines.instance import prepare_dagster_home
    from pipelines.signals.health import SignalsRunsCollector

    prepare_dagster_home(get_settings())
    instance: dg.DagsterInstance | None = None

    def get_instance() -> dg.DagsterInstance:
        nonlocal instance
        if instance is None:
            instance = dg.DagsterInstance.get()
        return instance

    return SignalsRunsCollector(get_instance)


# More collectors served beside the database gauges, each made when the endpoint starts
# (a factory, so what it imports loads only in the process that serves it).
EXTRA_COLLECTORS: list[Callable[[], Collector]] = [signals_runs_collector]


def serve_metrics(port: int, *, host: str = "127.0.0.1", settings: Settings | None = None) -> None:
    """Serve /metrics on host:port from a background thread (prometheus_client's)."""
    registry = gauges_registry(
        libpq_url(settings or get_settings()), extra=[make() for make in EXTRA_COLLECTORS]
    )
    start_http_server(port, addr=host, registry=registry)
