"""Enqueueing: signal versions and corrections, the canonical reader, secrets kept out."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from cli.main import app
from partner_signals.pushes import enqueue_events, enqueue_new_canonical_events, enqueue_signal
from partner_signals.pushes.outbox import enqueue_events_after_saved_position
from partner_signals.readers import read_position, save_position
from partner_signals.settings import Settings
from tests.pushes.conftest import (
    ACCOUNT_SID,
    API_KEY,
    AUTH_TOKEN,
    WEBHOOK_SECRET,
    WEBHOOK_SECRET_NEXT,
    Clock,
    Partner,
    Received,
    Tenant,
    deliver,
    enable,
    enable_webhook,
    event,
    insert_canonical,
    outbox,
)


def test_a_changed_signal_is_pushed_as_a_versioned_correction(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    partner = partners()
    enable_webhook(engine, settings, tenant, partner.url)
    bucket = {"signal": "order_velocity", "key": "2026-03-14T12:00/15m"}
    with engine.begin() as conn:
        push = lambda value: enqueue_signal(  # noqa: E731
            conn,
            company_id=tenant.company_id,
            restaurant_id=tenant.restaurant_id,
            value=value,
            **bucket,
        )
        assert push({"orders": 12, "per_minute": 0.8}) == 1
        assert push({"per_minute": 0.8, "orders": 12}) == 0  # same value, other key order
        assert push({"orders": 13, "per_minute": 0.87}) == 1  # a late order arrived
    deliver(engine, settings, clock, tenant)

    first, second = (Webhook(WEBHOOK_SECRET).verify(r.body, r.headers) for r in partner.received)
    ordered = sorted([first, second], key=lambda p: p["version"])
    assert [(p["version"], p["correction"], p["previous_version"]) for p in ordered] == [
        (1, False, None),
        (2, True, 1),
    ]
    assert ordered[1]["value"] == {"orders": 13, "per_minute": 0.87}
    assert ordered[1]["type"] == "signal.order_velocity"


def test_signals_go_only_to_adapters_that_offer_them(
    engine: sa.Engine, settings: Settings, tenant: Tenant
) -> None:
    crm = enable(
        engine, settings, tenant, "crm", {"url": "http://127.0.0.1:9"}, {"api_key": API_KEY}
    )
    with engine.begin() as conn:
        for signal in ("time_to_pay", "order_velocity"):
            enqueue_signal(
                conn,
                company_id=tenant.company_id,
                restaurant_id=tenant.restaurant_id,
                signal=signal,
                key="o-1",
                value={"seconds": 300},
            )
    assert [r["event_type"] for r in outbox(engine, crm)] == ["signal.time_to_pay"]


def test_the_canonical_reader_follows_its_cursor_and_sees_late_events(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    canonical_table: str,
    ids: str,
) -> None:
    integration = enable_webhook(engine, settings, tenant, "http://127.0.0.1:9/hook")
    assert enqueue_new_canonical_events(engine, "c0", table=f"nowhere_{ids}.x") == "c0"

    payment = event(tenant, "payment.succeeded", source="stripe", data={"amount": 42})
    insert_canonical(engine, canonical_table, [event(tenant, "order.created"), payment])
    cursor = enqueue_new_canonical_events(engine, None, table=canonical_table, batch_size=1)
    assert cursor is not None
    assert len(outbox(engine, integration)) == 2

    # Landed now, happened an hour ago: the cursor is on load order, so it is still seen.
    late = event(tenant, "order.paid", occurred_at=datetime.now(UTC) - timedelta(hours=1))
    insert_canonical(engine, canonical_table, [late])
    newer = enqueue_new_canonical_events(engine, cursor, table=canonical_table)
    assert newer != cursor
    assert enqueue_new_canonical_events(engine, newer, table=canonical_table) == newer
    rows = outbox(engine, integration)
    assert [r["event_type"] for r in rows] == ["order.created", "payment.succeeded", "order.paid"]
    assert rows[1]["payload"]["data"] == {"amount": 42}


def test_the_outbox_keeps_its_position_in_the_database(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    canonical_table: str,
    ids: str,
) -> None:
    """The outbox asset has no sensor cursor: where it stopped is in ops.canonical_readers,
    so whichever process materializes it next continues from there."""
    reader = f"outbox-test-{ids}"
    integration = enable_webhook(engine, settings, tenant, "http://127.0.0.1:9/hook")
    insert_canonical(engine, canonical_table, [event(tenant, "order.created")])
    first = enqueue_events_after_saved_position(engine, table=canonical_table, reader=reader)
    assert (first.read, first.queued, first.more) == (1, 1, False)
    with engine.connect() as conn:
        saved = read_position(conn, reader)
    assert saved is not None and saved.as_cursor() == first.cursor

    again = enqueue_events_after_saved_position(engine, table=canonical_table, reader=reader)
    assert (again.read, again.queued) == (0, 0)
    late = event(tenant, "order.paid", occurred_at=datetime.now(UTC) - timedelta(hours=1))
    insert_canonical(engine, canonical_table, [late])
    third = enqueue_events_after_saved_position(engine, table=canonical_table, reader=reader)
    assert (third.read, third.queued) == (1, 1)
    assert [r["event_type"] for r in outbox(engine, integration)] == ["order.created", "order.paid"]

    # An overlapping run that read less and saves last never moves the position back.
    with engine.begin() as conn:
        save_position(conn, reader, saved)
        newest = read_position(conn, reader)
    assert newest is not None and newest.as_cursor() == third.cursor


def test_cli_enable_rotate_test_run_replay_and_secrets_stay_secret(
    cli_env: None,
    engine: sa.Engine,
    tenant: Tenant,
    partners: Callable[..., Partner],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    runner = CliRunner()

    def run(*args: str, input: str | None = None, code: int = 0) -> str:
        result = runner.invoke(app, list(args), input=input)
        assert result.exit_code == code, result.output
        return result.output

    # The partner echoes what it was sent into its error answer, credentials included.
    def echo(request: Received) -> tuple[int, dict[str, str], bytes]:
        auth = request.headers["authorization"]
        plain = base64.b64decode(auth.removeprefix("Basic "))
        return 401, {}, orjson.dumps(request.headers) + b" bad credentials " + plain

    partner = partners()
    twilio = partners(respond=echo)
    company, restaurant = tenant.company_id, tenant.restaurant_id
    outputs = [
        run("integrations", "enable", "webhook", "--company", company, "--restaurant", restaurant,
            "--url", partner.url, "--secret", WEBHOOK_SECRET),
        run("integrations", "enable", "webhook", "--company", company, "--restaurant", restaurant,
            "--url", partner.url, "--secret", "-", "--keep-previous", input=WEBHOOK_SECRET_NEXT + "\n"),
        run("integrations", "enable", "messaging", "--company", company, "--url", twilio.url,
            "--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN, "--from-number", "+97140000000",
            "--receipt-to", "+971500000009"),
        run("integrations", "enable", "crm", "--company", company, "--url", "ftp://nope",
            "--api-key", API_KEY, code=1),
        run("integrations", "test", "webhook", "--company", company, "--restaurant", restaurant),
    ]  # fmt: skip
    assert "2 signing secrets" in outputs[1]
    assert "http(s)" in outputs[3]
    assert "webhook ok" in outputs[4]

    # A receipt is a guest message: only to a number that opted in (issue 15).
    run("messaging", "consents", "add", "+971500000009", "--company", company, "--source", "test")
    with engine.begin() as conn:
        enqueue_events(conn, [event(tenant, "order.paid", data={"amount": 10})])
    outputs.append(run("deliveries", "run", "--company", company))
    assert "1 delivered" in outputs[-1] and "1 dead-lettered" in outputs[-1]
    # Rotation: the receiver with the old secret and the one with the new both verify.
    for request in partner.received:
        Webhook(WEBHOOK_SECRET).verify(request.body, request.headers)
        Webhook(WEBHOOK_SECRET_NEXT).verify(request.body, request.headers)
    assert "messaging" in run("deliveries", "status")
    outputs.append(run("deliveries", "replay", "--adapter", "messaging", "--fault", "ours"))
    assert outputs[-1].startswith("0 dead letters")
    outputs.append(run("deliveries", "replay", "--adapter", "messaging", "--fault", "partner"))
    assert outputs[-1].startswith("1 dead letters")

    with engine.connect() as conn:
        everything: str = conn.execute(
            sa.text(
                """
                select concat_ws(' ',
                    (select string_agg(t::text, ' ') from ops.integrations t),
                    (select string_agg(t::text, ' ') from ops.outbox t),
                    (select string_agg(t::text, ' ') from ops.delivery_attempts t),
                    (select string_agg(t::text, ' ') from ops.dead_letters t),
                    (select string_agg(t::text, ' ') from ops.audit_log t),
                    (select string_agg(t::text, ' ') from ops.adapter_sync_state t))
                """
            )
        ).scalar_one()
        errors: str = conn.execute(
            sa.text(
                "select a.error from ops.delivery_attempts a join ops.outbox o "
                "using (delivery_id) where a.adapter = 'messaging' and o.company_id = :c"
            ),
            {"c": company},
        ).scalar_one()
    assert "[redacted]" in errors  # the echoed token was stripped
    shown = " ".join(outputs) + caplog.text + everything
    for secret in (WEBHOOK_SECRET, WEBHOOK_SECRET_NEXT, AUTH_TOKEN, API_KEY):
        assert secret not in shown
        assert secret.removeprefix("whsec_") not in shown
