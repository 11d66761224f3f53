"""Property: any payload a provider signs maps to a canonical status (with the ids its type
needs), or is ignored on purpose, or carries an unmapped_reason (and is counted); it never
fails a staging query (which would stop the whole pipeline)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partner_signals.catalogue.sources import source
from partner_signals.events import DELIVERY_STATUSES
from tests.pipelines.conftest import run_dbt
from tests.pipelines.service_day import drop_database, new_database

KNOWN_NAMES = {
    "careem": ["order.created", "order.accepted", "order.ready_for_pickup", "order.cancelled",
               "order.updated"],
    "talabat": ["order_created", "order_picked_up", "order_rejected", "order_confirmed"],
    "deliveroo": ["order_placed", "order_acknowledged", "order_canceled", "order_created",
                  "order_cancelled", "order.status_update"],
    "jahez": ["order_received", "order_picked", "order_delivered", "order_confirmed"],
    "stripe": ["payment_intent.succeeded", "charge.refunded", "invoice.voided", "charge.succeeded"],
    "paypal": ["PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.REFUNDED"],
}  # fmt: skip
STAGING = {
    "careem": "stg_careem__order_events",
    "talabat": "stg_talabat__order_events",
    "deliveroo": "stg_deliveroo__order_events",
    "jahez": "stg_jahez__order_events",
    "stripe": "stg_stripe__payment_events",
    "paypal": "stg_paypal__payment_events",
}
RESTAURANT = "prop-r"
COMPANY = "prop-co"

# Timestamps: real ones, ones that pass a shape check but are not dates, and noise.
timestamps = st.one_of(
    st.datetimes(timezones=st.just(None)).map(lambda d: d.isoformat() + "Z"),
    st.from_regex(r"\A20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-9]{2}Z\Z"),
    st.text(max_size=30),
    st.none(),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)  # fmt: skip


def body_for(provider: str, name: str, when: Any, amount: Any, event_id: str) -> dict[str, Any]:
    if provider == "careem":
        return {
            "event_id": event_id,
            "event_type": name,
            "created_at": when,
            "order": {"id": "o", "store_id": RESTAURANT, "total": {"amount": amount}},
        }
    if provider == "talabat":
        return {
            "eventId": event_id,
            "eventType": name,
            "timestamp": when,
            "order": {"code": "o", "vendorCode": RESTAURANT, "price": {"grandTotal": amount}},
        }
    if provider == "deliveroo":
        return {
            "event": name,
            "body": {
                "occurred_at": when,
                "order": {
                    "id": "o",
                    "location_id": RESTAURANT,
                    "total_price": {"fractional": amount},
                },
            },
        }
    if provider == "jahez":
        return {
            "event_id": event_id,
            "event": name,
            "timestamp": when,
            "branch_id": RESTAURANT,
            "order": {"jahez_id": amount, "total": amount},
        }
    if provider == "stripe":
        return {
            "id": event_id,
            "type": name,
            "created": when,
            "data": {
                "object": {
                    "id": "pi",
                    "amount": amount,
                    "currency": amount,
                    "metadata": {"restaurant_id": RESTAURANT, "order_id": amount},
                }
            },
        }
    return {"id": event_id, "event_type": name, "create_time": when,
            "resource": {"id": "c", "custom_id": f"{RESTAURANT}:{amount}",
                         "amount": {"value": amount, "currency_code": amount}}}  # fmt: skip


@pytest.fixture(scope="module")
def staged(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = new_database(server_url, "ps_staging_props")
    try:
        with psycopg.connect(url) as conn:
            conn.execute(
                "insert into ops.companies (company_id, name) values (%s, %s)", (COMPANY, COMPANY)
            )
            conn.execute(
                "insert into ops.restaurants (restaurant_id, company_id, name, timezone) "
                "values (%s, %s, 'p', 'UTC')",
                (RESTAURANT, COMPANY),
            )
        run_dbt(url, ["run", "--select", "staging"], tmp_path_factory.mktemp("dbt-props"))
        yield url
    finally:
        drop_database(server_url, url)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    provider=st.sampled_from(sorted(STAGING)),
    name=st.data(),
    when=timestamps,
    amount=scalars,
)
def test_any_signed_payload_maps_or_is_ignored(
    staged: str, provider: str, name: st.DataObject, when: Any, amount: Any
) -> None:
    event_name = name.draw(st.one_of(st.sampled_from(KNOWN_NAMES[provider]), st.text(max_size=40)))
    event_id = uuid.uuid4().hex
    body = orjson.dumps(body_for(provider, event_name, when, amount, event_id)).decode()
    if "\\u0000" in body:
        return  # ingest refuses these before they land (tested in test_bad_input)
    with psycopg.connect(staged) as conn:
        raw_id = conn.execute(
            "insert into raw.webhook_events (source, company_id, event_id, event_type, "
            "received_at, headers, body) values (%s, %s, %s, %s, now(), %s, %s) returning id",
            (provider, COMPANY, event_id, event_name[:200] or "x",
             orjson.dumps({"x-deliveroo-sequence-guid": event_id}).decode(), body),
        ).fetchone()[0]  # type: ignore[index]  # fmt: skip
        row = conn.execute(
            f"select * from staging.{STAGING[provider]} where raw_id = %s", (raw_id,)
        ).fetchone()
        columns = [
            d.name
            for d in conn.execute(f"select * from staging.{STAGING[provider]} limit 0").description
            or []
        ]
    assert row is not None
    record = dict(zip(columns, row, strict=True))
    assert record["occurred_at"] is not None
    if "delivery_status" in record:
        assert record["delivery_status"] in (None, *DELIVERY_STATUSES)
    # Mapped, ignored on purpose, or counted as unmapped: never silently nothing. A mapped
    # event missing an id its type needs is counted too (canonical_events leaves it out).
    event_type = record["event_type"]
    if event_name in source(provider).ignored_event_types:
        assert record["unmapped_reason"] is None
    elif event_type is not None:
        missing = None
        if record["restaurant_id"] is None:
            missing = "no_restaurant_id"
        elif event_type.startswith(("order.", "delivery.")) and record["order_id"] is None:
            missing = "no_order_id"
        elif event_type.startswith("table.") and record["table_id"] is None:
            missing = "no_table_id"
        assert record["unmapped_reason"] == missing
    else:
        assert record["unmapped_reason"] in ("unknown_event", "unknown_status")
    if event_name not in KNOWN_NAMES[provider]:
        assert record["event_type"] in (
            None,
            "delivery.status_changed",
            "payment.succeeded",
            "payment.failed",
            "payment.refunded",
        )


def test_impossible_dates_fall_back_to_received_at(staged: str) -> None:
    with psycopg.connect(staged) as conn:
        for when in ("2026-02-30T10:00:00Z", "2026-19-39T29:59:00Z"):
            body = orjson.dumps(body_for("careem", "order.created", when, "1", uuid.uuid4().hex))
            raw_id = conn.execute(
                "insert into raw.webhook_events (source, company_id, event_id, event_type, "
                "received_at, headers, body) values ('careem', %s, %s, 'order.created', now(), "
                "'{}', %s) returning id",
                (COMPANY, uuid.uuid4().hex, body.decode()),
            ).fetchone()[0]  # type: ignore[index]
            occurred = conn.execute(
                "select occurred_at from staging.stg_careem__order_events where raw_id = %s",
                (raw_id,),
            ).fetchone()
            assert occurred is not None and occurred[0] is not None
