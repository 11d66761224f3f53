"""Messages a guest would accept, against a local server standing in for Twilio: none
without an opt-in, the opt-out line on every one, nothing after STOP, nudges to staff
only, and the restaurant's template in its language."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import psycopg
import pytest
import sqlalchemy as sa

from partner_signals.adapters.messaging import twilio_signature
from partner_signals.control import messaging
from partner_signals.control.actor import Actor
from partner_signals.db import with_database
from partner_signals.db.migrate import upgrade
from partner_signals.pushes import enqueue_events, enqueue_unpaid_bill_nudges
from partner_signals.settings import Settings
from tests.pushes.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    Clock,
    Partner,
    Tenant,
    deliver,
    enable,
    event,
    insert_canonical,
    outbox,
)

GUEST, OTHER_GUEST, STAFF = "+971501234567", "+971507654321", "+971500000001"
CLI = Actor.cli()
REPLY_URL = "https://signals.example/admin/v1/companies/{c}/messaging/replies"


@pytest.fixture
def twilio(partners: Callable[..., Partner]) -> Partner:
    return partners(respond=lambda r: (201, {"content-type": "application/json"}, b"{}"))


def _enable(engine: sa.Engine, settings: Settings, tenant: Tenant, url: str, **config: str) -> int:
    return enable(
        engine,
        settings,
        tenant,
        "messaging",
        {"base_url": url, "from": "+97140000000", **config},
        {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
    )


def _paid(tenant: Tenant, order: str, phone: str = GUEST, **data: object) -> dict[str, object]:
    return event(
        tenant, "order.paid", order_id=order, data={"guest_phone": phone, "amount": 45, **data}
    )


def _sent(twilio: Partner) -> list[dict[str, str]]:
    return [{k: v[0] for k, v in parse_qs(r.body.decode()).items()} for r in twilio.received]


def test_no_guest_message_without_an_opt_in_for_the_restaurant(
    engine: sa.Engine, settings: Settings, tenant: Tenant, twilio: Partner, clock: Clock
) -> None:
    _enable(engine, settings, tenant, twilio.url)
    with engine.begin() as conn:
        assert enqueue_events(conn, [_paid(tenant, "o-1")]) == 0  # no consent at all
        # An opt-in for the other restaurant does not cover this one.
        messaging.opt_in(
            conn,
            CLI,
            tenant.company_id,
            contact=GUEST,
            source="booking-form",
            restaurant_id=tenant.other_restaurant_id,
        )
        assert enqueue_events(conn, [_paid(tenant, "o-2")]) == 0
        messaging.opt_in(
            conn,
            CLI,
            tenant.company_id,
            contact=GUEST,
            source="pos",
            restaurant_id=tenant.restaurant_id,
        )
        assert enqueue_events(conn, [_paid(tenant, "o-3"), _paid(tenant, "o-4", OTHER_GUEST)]) == 1
    assert deliver(engine, settings, clock, tenant).delivered == 1
    (sent,) = _sent(twilio)
    assert sent["To"] == GUEST and "o-3" in sent["Body"]


def test_every_guest_message_ends_with_the_opt_out_line(
    engine: sa.Engine, settings: Settings, tenant: Tenant, twilio: Partner, clock: Clock
) -> None:
    _enable(engine, settings, tenant, twilio.url)
    with engine.begin() as conn:
        messaging.opt_in(conn, CLI, tenant.company_id, contact=GUEST, source="pos")
        assert enqueue_events(conn, [_paid(tenant, "default-text")]) == 1
        # A restaurant's own template that forgets it gets it all the same.
        messaging.set_template(
            conn,
            CLI,
            tenant.company_id,
            tenant.restaurant_id,
            kind="receipt",
            body="Paid: {amount} {currency}, order {order_id}. See you soon!",
        )
        assert enqueue_events(conn, [_paid(tenant, "own-text", currency="AED")]) == 1
    assert deliver(engine, settings, clock, tenant).delivered == 2
    bodies = sorted(s["Body"] for s in _sent(twilio))
    assert all(b.endswith("Reply STOP to opt out") for b in bodies), bodies
    assert "Paid: 45 AED, order own-text. See you soon! Reply STOP to opt out" in bodies


def test_after_stop_nothing_more_goes_to_that_guest(
    engine: sa.Engine, settings: Settings, tenant: Tenant, twilio: Partner, clock: Clock
) -> None:
    integration = _enable(engine, settings, tenant, twilio.url)
    with engine.begin() as conn:
        messaging.opt_in(conn, CLI, tenant.company_id, contact=GUEST, source="pos")
        messaging.opt_in(conn, CLI, tenant.company_id, contact=OTHER_GUEST, source="pos")
        assert enqueue_events(conn, [_paid(tenant, "o-1"), _paid(tenant, "o-2", OTHER_GUEST)]) == 2
    # The guest replies STOP before the receipt went out; Twilio signs the reply.
    url = REPLY_URL.format(c=tenant.company_id)
    form = [("From", GUEST), ("To", "+97140000000"), ("Body", "Stop"), ("AccountSid", ACCOUNT_SID)]
    with engine.begin() as conn:
        with pytest.raises(messaging.BadSignature):
            messaging.receive_reply(
                conn, tenant.company_id, key=settings.master_key(), url=url, form=form,
                signature=twilio_signature("not-the-token-0000", url, form),
            )  # fmt: skip
        done = messaging.receive_reply(
            conn, tenant.company_id, key=settings.master_key(), url=url, form=form,
            signature=twilio_signature(AUTH_TOKEN, url, form),
        )  # fmt: skip
    assert done is not None and done.messages_cancelled == 1
    with engine.begin() as conn:
        assert enqueue_events(conn, [_paid(tenant, "o-3")]) == 0  # later bills: nothing
    assert deliver(engine, settings, clock, tenant).delivered == 1
    assert [s["To"] for s in _sent(twilio)] == [OTHER_GUEST]
    statuses = {r["payload"]["order_id"]: r["status"] for r in outbox(engine, integration)}
    assert statuses == {"o-1": "cancelled", "o-2": "delivered"}
    with engine.connect() as conn:
        (consent,) = messaging.list_consents(conn, CLI, tenant.company_id, contact=GUEST)
    assert not consent.active and consent.opt_out_source == "reply:STOP"


def test_a_staff_nudge_never_reaches_a_guest(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    canonical_table: str,
    clock: Clock,
) -> None:
    now = datetime.now(UTC)
    bill = event(
        tenant,
        "order.bill_requested",
        order_id="unpaid",
        occurred_at=now - timedelta(minutes=45),
        data={"guest_phone": GUEST, "table_id": "T7"},
    )
    insert_canonical(engine, canonical_table, [bill])
    with engine.begin() as conn:
        messaging.opt_in(conn, CLI, tenant.company_id, contact=GUEST, source="pos")
    # No staff number: no nudge, although the bill names an opted-in guest's number.
    first = partners(respond=lambda r: (201, {}, b"{}"))
    integration = _enable(engine, settings, tenant, first.url)
    with engine.begin() as conn:
        assert enqueue_unpaid_bill_nudges(conn, now=now, table=canonical_table) == 0
        # A "staff" number that is a guest's contact is refused too.
        conn.execute(
            sa.text(
                "update ops.integrations set config = config || cast(:c as jsonb) "
                "where integration_id = :i"
            ),
            {"c": f'{{"nudge_to": "{GUEST}"}}', "i": integration},
        )
        assert enqueue_unpaid_bill_nudges(conn, now=now, table=canonical_table) == 0
        conn.execute(
            sa.text(
                "update ops.integrations set config = config || cast(:c as jsonb) "
                "where integration_id = :i"
            ),
            {"c": f'{{"nudge_to": "{STAFF}"}}', "i": integration},
        )
        assert enqueue_unpaid_bill_nudges(conn, now=now, table=canonical_table) == 1
    deliver(engine, settings, clock, tenant)
    (sent,) = _sent(first)
    assert sent["To"] == STAFF
    assert "T7" in sent["Body"] and "45 minutes" in sent["Body"]
    assert "STOP" not in sent["Body"]  # staff are not guests: no opt-out line


def test_templates_render_with_variables_in_the_restaurant_language(
    engine: sa.Engine, settings: Settings, tenant: Tenant, twilio: Partner, clock: Clock
) -> None:
    _enable(engine, settings, tenant, twilio.url)
    r = tenant.restaurant_id
    with engine.begin() as conn:
        messaging.opt_in(conn, CLI, tenant.company_id, contact=GUEST, source="pos")
        messaging.set_template(
            conn, CLI, tenant.company_id, r, kind="receipt", language="en",
            body="English receipt {order_id}",
        )  # fmt: skip
        messaging.set_language(conn, CLI, tenant.company_id, r, "ar")
        messaging.set_template(
            conn, CLI, tenant.company_id, r, kind="receipt",
            body="شكراً! الطلب {order_id}، المبلغ {amount} {currency}، {restaurant_name}",
        )  # fmt: skip
        assert enqueue_events(conn, [_paid(tenant, "o-ar", currency="AED")]) == 1
    deliver(engine, settings, clock, tenant)
    (sent,) = _sent(twilio)
    assert sent["Body"] == f"شكراً! الطلب o-ar، المبلغ 45 AED، {r} أرسل STOP لإلغاء الاشتراك"


def test_the_upgrade_cancels_what_the_old_rules_queued(server_url: str) -> None:
    """0018: receipts queued before opt-ins were required, and nudges addressed to anyone
    but the staff number, are cancelled; a nudge to staff still goes."""
    name = f"ps_test_mig18_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = with_database(server_url, name).replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    try:
        upgrade(engine, "0017")
        with engine.begin() as conn:
            conn.execute(sa.text("insert into ops.companies (company_id, name) values ('c', 'c')"))
            iid = conn.execute(
                sa.text(
                    "insert into ops.integrations (company_id, provider, config) values "
                    f"""('c', 'messaging', '{{"from": "+97140000000", "nudge_to": "{STAFF}"}}')"""
                    " returning integration_id"
                )
            ).scalar()
            for key, kind, to in (
                ("r1", "receipt", GUEST),
                ("n1", "bill.unpaid_nudge", GUEST),
                ("n2", "bill.unpaid_nudge", STAFF),
            ):
                conn.execute(
                    sa.text(
                        "insert into ops.outbox (integration_id, adapter, company_id, "
                        "idempotency_key, event_id, event_type, payload) values "
                        "(:i, 'messaging', 'c', :k, :k, :t, cast(:p as jsonb))"
                    ),
                    {"i": iid, "k": key, "t": kind, "p": f'{{"to": "{to}"}}'},
                )
        upgrade(engine)
        upgrade(engine)  # safe to run twice
        with engine.connect() as conn:
            statuses = dict(
                conn.execute(sa.text("select idempotency_key, status from ops.outbox")).all()
            )
        assert statuses == {"r1": "cancelled", "n1": "cancelled", "n2": "pending"}
    finally:
        engine.dispose()
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
