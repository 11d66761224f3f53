"""The database gauges against a real database: pushes, dead letters, lag, unmapped events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest

from partner_signals.adapters import ADAPTERS
from partner_signals.catalogue import signals as catalogue
from partner_signals.observability import (
    READERS,
    UNMAPPED_MAX_SERIES,
    UNMAPPED_OTHER,
    DatabaseGauges,
    signal_lags,
)
from partner_signals.processes import bin_path, child_env, free_port, start, stop, wait_ready
from partner_signals.registry import add_restaurant, enable_adapter, ensure_company
from partner_signals.settings import Settings
from tests.pipelines.service_day import drop_database, new_database

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
UNMAPPED_DDL = """
create schema if not exists marts;
create table marts.unmapped_events (
    company_id text not null,
    source text not null,
    provider_event_type text,
    reason text not null,
    events bigint not null,
    first_received_at timestamptz not null,
    last_received_at timestamptz not null,
    sample_raw_id bigint not null
)
"""


@pytest.fixture
def url(server_url: str) -> Iterator[str]:
    """A database of this test's own: the gauges count every company's rows."""
    made = new_database(server_url, "ps_gauges")
    try:
        yield made
    finally:
        drop_database(server_url, made)


def samples(gauges: DatabaseGauges) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(metric name, sorted labels) -> value, from one collection."""
    found = {}
    for family in gauges.collect():
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def engine_for(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def test_an_empty_database_reports_zeros_and_no_unmapped_series(url: str) -> None:
    found = samples(DatabaseGauges(url))
    for adapter in ADAPTERS:
        assert value(found, "partner_signals_pushes_pending", adapter=adapter) == 0
        assert value(found, "partner_signals_pushes_oldest_pending_seconds", adapter=adapter) == 0
        assert value(found, "partner_signals_dead_letters_waiting", adapter=adapter) == 0
    for signal in catalogue.signals():
        assert value(found, "partner_signals_signal_lag_seconds", signal=signal.name) == 0
    # marts.unmapped_events does not exist yet: no series, and the reader is still up.
    assert not [key for key in found if key[0] == "partner_signals_unmapped_events"]
    for name, _ in READERS:
        assert value(found, "partner_signals_gauges_up", reader=name) == 1


def test_pending_pushes_oldest_age_and_dead_letters_per_adapter(url: str) -> None:
    engine = engine_for(url)
    settings = Settings(database_url=url, secret_key="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
    with engine.begin() as conn:
        ensure_company(conn, company_id="co-gauges", plan="enterprise")
        add_restaurant(
            conn, company_id="co-gauges", restaurant_id="r-gauges", timezone="Asia/Dubai"
        )
        enable_adapter(
            conn,
            key=settings.master_key(),
            company_id="co-gauges",
            adapter="webhook",
            config={"url": "http://127.0.0.1:9/hook"},
            secrets={"secrets": [WEBHOOK_SECRET]},
        )
        integration: int = conn.execute(
            sa.text("select integration_id from ops.integrations where company_id = 'co-gauges'")
        ).scalar_one()

        def outbox(status: str, age_seconds: int) -> int:
            return int(
                conn.execute(
                    sa.text(
                        """
                        insert into ops.outbox (integration_id, adapter, company_id,
                            restaurant_id, idempotency_key, event_id, event_type, payload,
                            status, created_at)
                        values (:i, 'webhook', 'co-gauges', 'r-gauges', :k, :k, 'order.paid',
                            '{}'::jsonb, :s, now() - make_interval(secs => :age))
                        returning delivery_id
                        """
                    ),
                    {"i": integration, "k": uuid.uuid4().hex, "s": status, "age": age_seconds},
                ).scalar_one()
            )

        for age in (600, 60, 5):
            outbox("pending", age)
        outbox("delivered", 3600)  # delivered long ago: neither pending nor oldest
        waiting = outbox("dead", 900)
        replayed = outbox("pending", 30)  # a dead letter replayed: pending again
        conn.execute(
            sa.text(
                """
                insert into ops.dead_letters (delivery_id, fault, reason, replayed_at)
                values (:w, 'partner', 'gone', null), (:r, 'partner', 'gone', now())
                """
            ),
            {"w": waiting, "r": replayed},
        )
    engine.dispose()

    found = samples(DatabaseGauges(url))
    assert value(found, "partner_signals_pushes_pending", adapter="webhook") == 4
    oldest = value(found, "partner_signals_pushes_oldest_pending_seconds", adapter="webhook")
    assert oldest is not None and 600 <= oldest < 660
    assert value(found, "partner_signals_dead_letters_waiting", adapter="webhook") == 1
    others = [a for a in ADAPTERS if a != "webhook"]
    assert others and all(
        value(found, "partner_signals_pushes_pending", adapter=a) == 0 for a in others
    )


def test_lag_before_any_dbt_run_is_the_age_of_the_oldest_landed_event(url: str) -> None:
    """A fresh deployment where dbt never ran: every landed event is waiting, so the lag
    grows from the first one (the failure the issue found went unnoticed for minutes)."""
    landed = datetime.now(UTC) - timedelta(seconds=300)
    with psycopg.connect(url) as conn:
        for n, received in enumerate((landed, landed + timedelta(seconds=200))):
            conn.execute(
                """
                insert into raw.order_events (source, company_id, restaurant_id, event_id,
                    event_type, occurred_at, received_at, headers, body)
                values ('pos', 'co', 'r', %s, 'order.created', %s, %s, '{}', '{}')
                """,
                (f"e{n}", received, received),
            )
    with psycopg.connect(url, autocommit=True) as conn:
        lags = {lag.signal: lag for lag in signal_lags(conn)}
    assert set(lags) == {s.name for s in catalogue.signals()}
    for lag in lags.values():
        assert 300 <= lag.seconds < 360
        assert lag.waiting_since == landed
        assert lag.processed_through is None
    found = samples(DatabaseGauges(url))
    for signal in catalogue.signals():
        seconds = value(found, "partner_signals_signal_lag_seconds", signal=signal.name)
        assert seconds is not None and seconds >= 300


def test_unmapped_events_appear_once_the_model_exists_and_are_capped(url: str) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        conn.execute(UNMAPPED_DDL)
        # A row per company: two companies' careem order.updated make one series.
        rows = [
            ("co-a", "careem", "order.updated", 4),
            ("co-b", "careem", "order.updated", 3),
            ("co-a", "talabat", "order_confirmed", 3),
        ]
        # An integration inventing names: the smallest ones are summed, not each a series.
        rows += [("co-a", "jahez", f"invented_{n:03d}", 1) for n in range(UNMAPPED_MAX_SERIES)]
        for n, (company, source, name, events) in enumerate(rows):
            conn.execute(
                "insert into marts.unmapped_events values (%s, %s, %s, %s, %s, %s, %s, %s)",
                (company, source, name, "unknown_event", events, now, now, n + 1),
            )
        # Quarantined events of a mapped name: their own series, by reason.
        conn.execute(
            "insert into marts.unmapped_events values (%s, %s, %s, %s, %s, %s, %s, %s)",
            ("co-a", "stripe", "invoice.paid", "foreign_restaurant", 50, now, now, 999),
        )
    found = samples(DatabaseGauges(url))
    unmapped = {
        dict(labels)["provider_event_type"]: v
        for (name, labels), v in found.items()
        if name == "partner_signals_unmapped_events"
    }
    assert unmapped["order.updated"] == 7
    assert unmapped["order_confirmed"] == 3
    assert unmapped["invoice.paid"] == 50
    assert (
        value(
            found,
            "partner_signals_unmapped_events",
            source="stripe",
            provider_event_type="invoice.paid",
            reason="foreign_restaurant",
        )
        == 50
    )
    assert len(unmapped) == UNMAPPED_MAX_SERIES + 1  # the top ones, then one "(other)"
    assert unmapped[UNMAPPED_OTHER] == 3  # the three smallest invented names
    assert sum(unmapped.values()) == 10 + 50 + UNMAPPED_MAX_SERIES


def test_scrapes_within_the_cache_window_ask_the_database_once(url: str) -> None:
    now = [0.0]
    gauges = DatabaseGauges(url, cache_seconds=10.0, clock=lambda: now[0])
    registry = CollectorRegistry()
    registry.register(gauges)
    for _ in range(5):
        assert b"partner_signals_pushes_pending" in generate_latest(registry)
    assert gauges.refreshes == 1
    now[0] = 11.0
    generate_latest(registry)
    assert gauges.refreshes == 2


def test_a_database_that_cannot_be_reached_reports_readers_down_without_raising() -> None:
    gauges = DatabaseGauges("postgresql://postgres@127.0.0.1:9/nowhere")
    found = samples(gauges)
    for name, _ in READERS:
        assert value(found, "partner_signals_gauges_up", reader=name) == 0
    assert not [key for key in found if key[0] == "partner_signals_pushes_pending"]


def test_a_failing_reader_leaves_the_others_reporting(url: str) -> None:
    def broken(conn: psycopg.Connection[Any]) -> list[Any]:
        conn.execute("select * from ops.no_such_table")
        return []

    found = samples(DatabaseGauges(url, readers=[("broken", broken), *READERS]))
    assert value(found, "partner_signals_gauges_up", reader="broken") == 0
    assert value(found, "partner_signals_gauges_up", reader="pushes") == 1
    assert value(found, "partner_signals_pushes_pending", adapter="webhook") == 0


def test_the_deliveries_daemon_serves_the_gauges_on_its_metrics_port(
    url: str, tmp_path: Path
) -> None:
    """`serve` starts `deliveries run --forever --metrics-port` under a multiprocess
    directory: the database gauges are served from it."""
    settings = Settings(
        database_url=url,
        data_dir=tmp_path,
        secret_key="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    )
    (tmp_path / "prometheus").mkdir()
    env = child_env(settings, {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")})
    port = free_port()
    command = [bin_path("partner-signals"), "deliveries", "run", "--forever"]
    proc = start([*command, "--metrics-port", str(port)], env, quiet=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}/metrics", proc, timeout=60)
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        stop(proc)
    assert 'partner_signals_pushes_pending{adapter="webhook"} 0.0' in text
    for signal in catalogue.signals():
        assert f'partner_signals_signal_lag_seconds{{signal="{signal.name}"}} 0.0' in text
    for name, _ in READERS:
        assert f'partner_signals_gauges_up{{reader="{name}"}} 1.0' in text
    # Beside them, the signals runs' health from Dagster's run records (no run yet).
    assert "partner_signals_signals_runs_health_up 1.0" in text
    assert "partner_signals_signals_runs_failed_in_a_row 0.0" in text
