"""Bad input at the ingest API: the catalogue in docs/bad-input.md, one probe per row.

Each probe sends one or more requests and states the answer it must get and how many
events may land. Figures (sent, acknowledged, found, recorded as rejected) go to
.data/reliability/figures.json under "bad_input".
"""

from __future__ import annotations

import json
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from ingest.app import create_app
from partner_signals.providers import PROVIDERS
from partner_signals.settings import Settings
from tests.ingest.conftest import PAYPAL_KEY, Tenant, make_tenant
from tests.reliability.conftest import record

MIB = 1024 * 1024
Body = bytes | Callable[[], Iterator[bytes]]


@dataclass(frozen=True)
class Req:
    path: str
    body: Body
    headers: dict[str, str]


@dataclass(frozen=True)
class Probe:
    name: str
    what: str
    build: Callable[[Tenant, Tenant], list[Req]]
    expect: int
    lands: int = 0
    # The refusal's error code, and words its message must hold (the field it names).
    code: str = ""
    says: str = ""


def careem(tenant: Tenant, **extra: Any) -> tuple[str, bytes]:
    eid = uuid.uuid4().hex
    body = {"event_id": eid, "event_type": "order.created", "order": {"store_id": "x"}, **extra}
    return eid, orjson.dumps(body)


def stripe_body(**extra: Any) -> bytes:
    return orjson.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "charge.refunded", **extra})


def signed(
    provider: str, body: bytes, tenant: Tenant, *, now: float | None = None, event_id: str = ""
) -> dict[str, str]:
    now = time.time() if now is None else now
    secret = PAYPAL_KEY if provider == "paypal" else tenant.secret
    signing_id = tenant.paypal_webhook_id if provider == "paypal" else event_id or "guid-x"
    return {
        "Content-Type": "application/json",
        **PROVIDERS[provider].sign(body, secret, now, signing_id),
    }


def hook(provider: str, tenant: Tenant) -> str:
    return f"/webhooks/{provider}/{tenant.company_id}"


def pos_body(tenant: Tenant, raw_extra: bytes = b"", **fields: Any) -> bytes:
    event = {
        "event_id": uuid.uuid4().hex,
        "type": "order.created",
        "occurred_at": "2026-11-23T19:04:05+04:00",
        "restaurant_id": tenant.restaurant_id,
        "order_id": "o-1",
        "data": {"channel": "takeaway"},
        **fields,
    }
    body = orjson.dumps(event)
    return body[:-1] + b"," + raw_extra + b"}" if raw_extra else body


def pos_headers(tenant: Tenant, content_type: str = "application/json") -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.ingest_key}", "Content-Type": content_type}


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def one_webhook_signed(
    body_of: Callable[[Tenant], bytes], provider: str = "careem"
) -> Callable[[Tenant, Tenant], list[Req]]:
    def build(t: Tenant, other: Tenant) -> list[Req]:
        body = body_of(t)
        return [Req(hook(provider, t), body, signed(provider, body, t))]

    return build


def padded_careem(size: int) -> Callable[[Tenant], bytes]:
    def body_of(t: Tenant) -> bytes:
        _, base = careem(t, pad="")
        return base.replace(b'"pad":""', b'"pad":"' + b"x" * (size - len(base)) + b'"')

    return body_of


def truncated(provider: str, header: str, cut: Callable[[str], str]) -> Callable[..., list[Req]]:
    def build(t: Tenant, other: Tenant) -> list[Req]:
        eid, body = careem(t) if provider != "stripe" else ("", stripe_body())
        headers = signed(provider, body, t, event_id=eid or "guid-t")
        key = next(k for k in headers if k.lower() == header)
        headers[key] = cut(headers[key])
        return [Req(hook(provider, t), body, headers)]

    return build


def stale(provider: str, skew: float) -> Callable[..., list[Req]]:
    def build(t: Tenant, other: Tenant) -> list[Req]:
        body = (
            stripe_body()
            if provider == "stripe"
            else orjson.dumps({"id": f"WH-{uuid.uuid4().hex}", "event_type": "X"})
        )
        return [Req(hook(provider, t), body, signed(provider, body, t, now=time.time() + skew))]

    return build


def content_type(ctype: str | None, pos: bool) -> Callable[..., list[Req]]:
    def build(t: Tenant, other: Tenant) -> list[Req]:
        if pos:
            headers = pos_headers(t)
            body = pos_body(t)
            path = "/events"
        else:
            _eid, body = careem(t)
            headers = signed("careem", body, t)
            path = hook("careem", t)
        headers.pop("Content-Type")
        if ctype is not None:
            headers["Content-Type"] = ctype
        return [Req(path, body, headers)]

    return build


def chunked_oversize() -> Iterator[bytes]:
    yield b'{"event_id":"chunked","event_type":"x","pad":"'
    for _ in range(MIB // 65536 + 1):
        yield b"x" * 65536
    yield b'"}'


def replay_within_tolerance(t: Tenant, other: Tenant) -> list[Req]:
    body = stripe_body()
    headers = signed("stripe", body, t, now=time.time() - 60)
    return [Req(hook("stripe", t), body, headers)] * 3


def other_company_secret(t: Tenant, other: Tenant) -> list[Req]:
    _eid, body = careem(t)
    return [Req(hook("careem", t), body, signed("careem", body, other))]


def signed_for_a_posted_to_b(t: Tenant, other: Tenant) -> list[Req]:
    eid, body = careem(t)
    return [
        Req(hook(p, other), b, signed(p, b, t, event_id=eid))
        for p, b in (("careem", body), ("stripe", stripe_body()), ("deliveroo", body))
    ]


def pos_key_for_other_restaurant(t: Tenant, other: Tenant) -> list[Req]:
    return [Req("/events", pos_body(t, restaurant_id=other.restaurant_id), pos_headers(t))]


def pos_with(**data: Any) -> Callable[[Tenant, Tenant], list[Req]]:
    """One POS order.paid (amount 10 unless given) whose data carries `data`."""

    def build(t: Tenant, other: Tenant) -> list[Req]:
        body = pos_body(t, type="order.paid", data={"amount": 10, **data})
        return [Req("/events", body, pos_headers(t))]

    return build


def pos_at(occurred_at: Any) -> Callable[[Tenant, Tenant], list[Req]]:
    def build(t: Tenant, other: Tenant) -> list[Req]:
        return [Req("/events", pos_body(t, occurred_at=occurred_at), pos_headers(t))]

    return build


def pos_ahead(delta: timedelta) -> Callable[[Tenant, Tenant], list[Req]]:
    def build(t: Tenant, other: Tenant) -> list[Req]:
        at = (datetime.now(UTC) + delta).isoformat(timespec="seconds")
        return [Req("/events", pos_body(t, occurred_at=at), pos_headers(t))]

    return build


def pos_batch(*bad: dict[str, Any]) -> Callable[[Tenant, Tenant], list[Req]]:
    """An NDJSON batch: one valid event, then one line per `bad` (fields replaced)."""

    def build(t: Tenant, other: Tenant) -> list[Req]:
        lines = [pos_body(t)]
        for fields in bad:
            event = orjson.loads(pos_body(t))
            event.update(fields)
            lines.append(orjson.dumps({k: v for k, v in event.items() if v is not None}))
        return [Req("/events", b"\n".join(lines), pos_headers(t, "application/x-ndjson"))]

    return build


NFD_CAFE = unicodedata.normalize("NFD", "caf\u00e9")


def stripe_ids(*ids: Any) -> Callable[[Tenant, Tenant], list[Req]]:
    """One signed Stripe event per id, each id as given (its JSON type kept)."""

    def build(t: Tenant, other: Tenant) -> list[Req]:
        bodies = [orjson.dumps({"id": i, "type": "charge.refunded"}) for i in ids]
        return [Req(hook("stripe", t), b, signed("stripe", b, t)) for b in bodies]

    return build


def careem_ids(*ids: str) -> Callable[[Tenant, Tenant], list[Req]]:
    def build(t: Tenant, other: Tenant) -> list[Req]:
        bodies = [
            orjson.dumps({"event_id": i, "event_type": "order.created", "order": {}}) for i in ids
        ]
        return [Req(hook("careem", t), b, signed("careem", b, t)) for b in bodies]

    return build


def stripe_for_other_restaurant(t: Tenant, other: Tenant) -> list[Req]:
    body = stripe_body(data={"object": {"metadata": {"restaurant_id": other.restaurant_id}}})
    return [Req(hook("stripe", t), body, signed("stripe", body, t))]


# Strict input (issue 12): values of the wrong JSON kind, times outside the format, ids
# that would collide. A wrong kind is 422 naming the field; a body that is no event 400.
STRICT_PROBES = [
    Probe(
        "pos_amount_underscore",
        'POS order.paid with "amount": "1_000"',
        pos_with(amount="1_000"),
        422,
        code="invalid_event",
        says="data.amount: must be a JSON number, not a JSON string",
    ),
    Probe(
        "pos_amount_decimal_string",
        'POS order.paid with "amount": "12.50" (money is a JSON number)',
        pos_with(amount="12.50"),
        422,
        code="invalid_event",
        says="data.amount",
    ),
    Probe(
        "pos_amount_boolean",
        'POS order.paid with "amount": true',
        pos_with(amount=True),
        422,
        code="invalid_event",
        says="data.amount: must be a JSON number, not a JSON boolean",
    ),
    Probe(
        "pos_unit_price_string",
        'POS event with "unit_price": "24.00"',
        pos_with(unit_price="24.00"),
        422,
        code="invalid_event",
        says="data.unit_price",
    ),
    Probe(
        "pos_covers_string",
        'POS event with "covers": "2"',
        pos_with(covers="2"),
        422,
        code="invalid_event",
        says="data.covers: must be a JSON integer, not a JSON string",
    ),
    Probe(
        "pos_covers_true",
        'POS event with "covers": true',
        pos_with(covers=True),
        422,
        code="invalid_event",
        says="data.covers: must be a JSON integer, not a JSON boolean",
    ),
    Probe(
        "pos_covers_fraction",
        'POS event with "covers": 2.5',
        pos_with(covers=2.5),
        422,
        code="invalid_event",
        says="data.covers: must be a JSON integer",
    ),
    Probe(
        "pos_numbers_accepted",
        "POS order.paid with amount 1000, unit_price 24.00, covers 2 (JSON numbers: lands)",
        pos_with(amount=1000, unit_price=24.0, covers=2),
        200,
        lands=1,
    ),
    Probe(
        "pos_occurred_at_epoch",
        "POS event with occurred_at 1700000000 (a unix epoch, a JSON number)",
        pos_at(1_700_000_000),
        422,
        code="invalid_event",
        says="occurred_at: must be ISO 8601 text",
    ),
    Probe(
        "pos_occurred_at_epoch_text",
        'POS event with occurred_at "1700000000"',
        pos_at("1700000000"),
        422,
        code="invalid_event",
        says="occurred_at: must be ISO 8601",
    ),
    Probe(
        "pos_occurred_at_epoch_ms",
        "POS event with occurred_at 253402300800 (year 10000 in epoch seconds)",
        pos_at(253_402_300_800),
        422,
        code="invalid_event",
        says="occurred_at",
    ),
    Probe(
        "pos_occurred_at_year_0",
        'POS event with occurred_at "0000-01-01T00:00:00Z"',
        pos_at("0000-01-01T00:00:00Z"),
        422,
        code="invalid_event",
        says="occurred_at",
    ),
    Probe(
        "pos_occurred_at_year_10000",
        'POS event with occurred_at "10000-01-01T00:00:00Z"',
        pos_at("10000-01-01T00:00:00Z"),
        422,
        code="invalid_event",
        says="occurred_at",
    ),
    Probe(
        "pos_occurred_at_1999",
        'POS event with occurred_at "1999-12-31T23:59:59Z" (before the window)',
        pos_at("1999-12-31T23:59:59Z"),
        422,
        code="invalid_event",
        says="occurred_at: must be from 2000-01-01",
    ),
    Probe(
        "pos_occurred_at_2_days_ahead",
        "POS event dated two days ahead (past now + 1 day)",
        pos_ahead(timedelta(days=2)),
        422,
        code="invalid_event",
        says="occurred_at: must be from",
    ),
    Probe(
        "pos_occurred_at_23h_ahead",
        "POS event dated 23 hours ahead (within now + 1 day: lands)",
        pos_ahead(timedelta(hours=23)),
        200,
        lands=1,
    ),
    Probe(
        "pos_occurred_at_space",
        'POS event with occurred_at "2026-11-23 19:04:05+04:00" (no T)',
        pos_at("2026-11-23 19:04:05+04:00"),
        422,
        code="invalid_event",
        says="occurred_at",
    ),
    Probe(
        "pos_occurred_at_no_offset",
        'POS event with occurred_at "2026-11-23T19:04:05" (no offset)',
        pos_at("2026-11-23T19:04:05"),
        422,
        code="invalid_event",
        says="occurred_at",
    ),
    Probe(
        "pos_event_id_not_nfc",
        "POS event whose event_id is NFD (e + combining acute)",
        lambda t, o: [Req("/events", pos_body(t, event_id=NFD_CAFE), pos_headers(t))],
        422,
        code="invalid_event",
        says="event_id: must be Unicode NFC",
    ),
    Probe(
        "pos_order_id_not_nfc",
        "POS event whose order_id is NFD",
        lambda t, o: [Req("/events", pos_body(t, order_id=NFD_CAFE), pos_headers(t))],
        422,
        code="invalid_event",
        says="order_id: must be Unicode NFC",
    ),
    Probe(
        "pos_event_id_number",
        "POS event whose event_id is the JSON number 123",
        lambda t, o: [Req("/events", pos_body(t, event_id=123), pos_headers(t))],
        422,
        code="invalid_event",
        says="event_id: must be a JSON string, not 123",
    ),
    Probe(
        "pos_batch_wrong_kind",
        'NDJSON batch: a valid event, then one with "covers": "2" (the batch is refused)',
        pos_batch({"data": {"channel": "takeaway", "covers": "2"}}),
        422,
        code="invalid_event",
        says="line 2: data.covers",
    ),
    Probe(
        "pos_batch_wrong_kind_and_missing_id",
        "NDJSON batch: a valid event, one with covers true, one without event_id",
        pos_batch({"data": {"covers": True}}, {"event_id": None}),
        400,
        code="invalid_event",
        says="line 2: data.covers",
    ),
    Probe(
        "stripe_ids_number_and_string",
        'Stripe events with ids 123 and "123" (two events, not a duplicate)',
        stripe_ids(123, "123"),
        200,
        lands=2,
    ),
    Probe(
        "stripe_id_hash_and_number",
        'Stripe events with ids "#123" and 123 (two events)',
        stripe_ids("#123", 123),
        200,
        lands=2,
    ),
    Probe(
        "stripe_id_float",
        "Stripe event whose id is 1.5",
        stripe_ids(1.5),
        400,
        code="malformed_event",
        says="field id must be a non-empty string or an integer",
    ),
    Probe(
        "stripe_id_true",
        "Stripe event whose id is true",
        stripe_ids(True),
        400,
        code="malformed_event",
        says="field id",
    ),
    Probe(
        "careem_id_nfc_then_nfd",
        "Careem event id caf\u00e9 sent in NFC, then in NFD (one event: NFC-normalised)",
        careem_ids(unicodedata.normalize("NFC", "caf\u00e9"), NFD_CAFE),
        200,
        lands=1,
    ),
    Probe(
        "stripe_other_company_restaurant",
        "Stripe webhook signed by A naming B's restaurant (landed, quarantined in staging)",
        stripe_for_other_restaurant,
        200,
        lands=1,
    ),
]

PROBES = [
    Probe(
        "oversized_webhook",
        "signed webhook, 1 MiB + 1 byte",
        one_webhook_signed(padded_careem(MIB + 1)),
        413,
    ),
    Probe(
        "oversized_pos",
        "POS event, 1 MiB + 1 byte",
        lambda t, o: [Req("/events", pos_body(t, note="x" * MIB), pos_headers(t))],
        413,
    ),
    Probe(
        "oversized_chunked",
        "over 1 MiB, chunked (no Content-Length to refuse up front)",
        lambda t, o: [
            Req(hook("careem", t), chunked_oversize, {"Content-Type": "application/json"})
        ],
        413,
    ),
    Probe(
        "body_at_limit",
        "signed webhook of exactly 1 MiB",
        one_webhook_signed(padded_careem(MIB)),
        200,
        lands=1,
    ),
    Probe(
        "deep_nesting_webhook",
        "signed webhook with arrays nested 100,000 deep",
        one_webhook_signed(lambda t: careem(t)[1][:-1] + b',"deep":' + nested(100_000) + b"}"),
        400,
    ),
    Probe(
        "deep_nesting_pos",
        "POS event with arrays nested 100,000 deep",
        lambda t, o: [Req("/events", pos_body(t, b'"deep":' + nested(100_000)), pos_headers(t))],
        400,
    ),
    Probe(
        "nesting_500_webhook",
        "signed webhook nested 500 deep (within limits: lands, and is valid jsonb)",
        one_webhook_signed(lambda t: careem(t)[1][:-1] + b',"deep":' + nested(500) + b"}"),
        200,
        lands=1,
    ),
    Probe(
        "non_utf8_webhook",
        "signed webhook whose body is Latin-1, not UTF-8",
        one_webhook_signed(lambda t: careem(t, note="caf\u00e9")[1].replace(b"\xc3\xa9", b"\xe9")),
        400,
    ),
    Probe(
        "non_utf8_stripe",
        "Stripe-signed body that is not UTF-8",
        lambda t, o: [
            Req(
                hook("stripe", t),
                b'{"id":"evt_\xe9","type":"x"}',
                {
                    "Content-Type": "application/json",
                    "Stripe-Signature": f"t={int(time.time())},v1=" + "0" * 64,
                },
            )
        ],
        401,
    ),
    Probe(
        "non_utf8_pos",
        "POS event that is not UTF-8",
        lambda t, o: [Req("/events", pos_body(t, b'"note":"caf\xe9"'), pos_headers(t))],
        400,
    ),
    Probe(
        "lone_surrogate_webhook",
        'signed webhook with "\\ud800" (valid JSON text, not storable as jsonb)',
        one_webhook_signed(lambda t: careem(t)[1][:-1] + b',"s":"\\ud800"}'),
        400,
    ),
    Probe(
        "lone_surrogate_pos",
        'POS event with "\\ud800"',
        lambda t, o: [Req("/events", pos_body(t, b'"s":"\\ud800"'), pos_headers(t))],
        400,
    ),
    Probe(
        "nul_escape_pos",
        'POS event with "\\u0000" (PostgreSQL jsonb cannot hold it)',
        lambda t, o: [Req("/events", pos_body(t, note="a\u0000b"), pos_headers(t))],
        400,
    ),
    Probe(
        "malformed_json_webhook",
        "signed webhook body that is not JSON",
        one_webhook_signed(lambda t: b'{"event_id": "x", '),
        400,
    ),
    Probe(
        "json_array_webhook",
        "signed webhook body that is a JSON array, not an object",
        one_webhook_signed(lambda t: b'[{"event_id": "x", "event_type": "y"}]'),
        400,
    ),
    Probe(
        "empty_body_webhook",
        "signed empty body",
        one_webhook_signed(lambda t: b""),
        400,
    ),
    Probe(
        "missing_event_id",
        "signed webhook without its event id",
        one_webhook_signed(lambda t: b'{"event_type": "order.created"}'),
        400,
    ),
    Probe(
        "content_type_text_plain_webhook",
        "webhook as text/plain",
        content_type("text/plain", pos=False),
        415,
    ),
    Probe(
        "content_type_form_webhook",
        "webhook as application/x-www-form-urlencoded",
        content_type("application/x-www-form-urlencoded", pos=False),
        415,
    ),
    Probe(
        "content_type_missing_webhook",
        "webhook without Content-Type",
        content_type(None, pos=False),
        415,
    ),
    Probe(
        "content_type_ndjson_webhook",
        "webhook as application/x-ndjson",
        content_type("application/x-ndjson", pos=False),
        415,
    ),
    Probe(
        "content_type_charset_webhook",
        "webhook as application/json; charset=utf-8 (accepted)",
        content_type("application/json; charset=utf-8", pos=False),
        200,
        lands=1,
    ),
    Probe(
        "content_type_xml_pos",
        "POS event as application/xml",
        content_type("application/xml", pos=True),
        415,
    ),
    Probe(
        "content_type_multipart_pos",
        "POS event as multipart/form-data",
        content_type("multipart/form-data; boundary=x", pos=True),
        415,
    ),
    Probe("stripe_replayed_305s", "Stripe signed 305 s ago", stale("stripe", -305), 401),
    Probe("stripe_future_305s", "Stripe signed 305 s ahead", stale("stripe", 305), 401),
    Probe("stripe_replayed_1h", "Stripe signed an hour ago", stale("stripe", -3600), 401),
    Probe("paypal_replayed_305s", "PayPal sent 305 s ago", stale("paypal", -305), 401),
    Probe("paypal_future_305s", "PayPal sent 305 s ahead", stale("paypal", 305), 401),
    Probe(
        "replay_within_tolerance",
        "a captured Stripe request replayed twice within 300 s",
        replay_within_tolerance,
        200,
        lands=1,
    ),
    Probe(
        "truncated_careem_1",
        "X-Careem-Signature missing its last hex digit",
        truncated("careem", "x-careem-signature", lambda s: s[:-1]),
        401,
    ),
    Probe(
        "truncated_careem_half",
        "X-Careem-Signature cut to 32 hex digits",
        truncated("careem", "x-careem-signature", lambda s: s[:32]),
        401,
    ),
    Probe(
        "empty_signature",
        "X-Careem-Signature empty",
        truncated("careem", "x-careem-signature", lambda s: ""),
        401,
    ),
    Probe(
        "truncated_stripe",
        "Stripe-Signature v1 missing its last hex digit",
        truncated("stripe", "stripe-signature", lambda s: s[:-1]),
        401,
    ),
    Probe(
        "truncated_deliveroo",
        "X-Deliveroo-Hmac-Sha256 missing its last hex digit",
        truncated("deliveroo", "x-deliveroo-hmac-sha256", lambda s: s[:-1]),
        401,
    ),
    Probe(
        "truncated_paypal",
        "PAYPAL-TRANSMISSION-SIG cut short",
        lambda t, o: [
            Req(
                hook("paypal", t),
                b'{"id":"WH-2","event_type":"x"}',
                {
                    **(h := signed("paypal", b'{"id":"WH-2","event_type":"x"}', t)),
                    "PAYPAL-TRANSMISSION-SIG": h["PAYPAL-TRANSMISSION-SIG"][:-8],
                },
            )
        ],
        401,
    ),
    Probe(
        "other_company_secret",
        "careem webhook to A's URL signed with B's secret",
        other_company_secret,
        401,
    ),
    Probe(
        "signed_for_a_posted_to_b",
        "careem, stripe and deliveroo webhooks signed with A's secret, posted to B's URL",
        signed_for_a_posted_to_b,
        401,
    ),
    Probe(
        "pos_other_company_restaurant",
        "A's ingest key, B's restaurant in the event",
        pos_key_for_other_restaurant,
        422,
    ),
    Probe(
        "pos_no_key",
        "POS event without Authorization",
        lambda t, o: [
            Req("/events", pos_body(t), {"Content-Type": "application/json"}),
        ],
        401,
    ),
    Probe(
        "pos_basic_auth",
        "POS event with the key as Basic credentials",
        lambda t, o: [
            Req(
                "/events",
                pos_body(t),
                {"Content-Type": "application/json", "Authorization": f"Basic {t.ingest_key}"},
            )
        ],
        401,
    ),
    Probe(
        "pos_other_company_key",
        "POS event for A's restaurant with B's ingest key",
        lambda t, o: [Req("/events", pos_body(t), pos_headers(o))],
        422,
    ),
    Probe(
        "unknown_provider",
        "webhook for a provider that does not exist",
        lambda t, o: [Req(f"/webhooks/square/{t.company_id}", b"{}", signed("careem", b"{}", t))],
        404,
    ),
    Probe(
        "unknown_company",
        "webhook for a company that does not exist",
        lambda t, o: [Req("/webhooks/careem/no-such-co", b"{}", signed("careem", b"{}", t))],
        404,
    ),
    Probe(
        "huge_company_id",
        "webhook with a 5,000-character company id",
        lambda t, o: [Req(f"/webhooks/careem/{'c' * 5000}", b"{}", signed("careem", b"{}", t))],
        404,
    ),
]

XFAIL_PROBES = [
    pytest.param(
        Probe(
            "numeric_overflow_pos",
            "POS event with 1e200000 in an extra field (parses as inf; jsonb cannot hold it)",
            lambda t, o: [Req("/events", pos_body(t, b'"note":1e200000'), pos_headers(t))],
            400,
        ),
        id="numeric_overflow_pos",
    ),
    pytest.param(
        Probe(
            "nul_in_company_path",
            "webhook to /webhooks/careem/ab%00cd",
            lambda t, o: [Req("/webhooks/careem/ab%00cd", b"{}", signed("careem", b"{}", t))],
            404,
        ),
        id="nul_in_company_path",
    ),
]


def raw_for(engine: sa.Engine, company_id: str) -> tuple[int, int]:
    """(events landed, rejections recorded) for a company."""
    with engine.connect() as conn:
        landed: int = conn.execute(
            sa.text(
                "select (select count(*) from raw.webhook_events where company_id = :c)"
                " + (select count(*) from raw.order_events where company_id = :c)"
            ),
            {"c": company_id},
        ).scalar_one()
        rejected: int = conn.execute(
            sa.text("select count(*) from raw.rejected_requests where company_id = :c"),
            {"c": company_id},
        ).scalar_one()
    return int(landed), int(rejected)


@pytest.fixture(scope="module")
def ingest_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    "probe", [pytest.param(p, id=p.name) for p in PROBES + STRICT_PROBES] + XFAIL_PROBES
)
def test_bad_input(
    probe: Probe,
    ingest_client: TestClient,
    engine: sa.Engine,
    settings: Settings,
    ids: str,
) -> None:
    # A fresh pair of companies per probe, so the counts below are this probe's own.
    a = make_tenant(engine, settings, f"bi-a{ids}")
    b = make_tenant(engine, settings, f"bi-b{ids}")
    requests = probe.build(a, b)
    answers = []
    bodies = []
    for req in requests:
        content = req.body() if callable(req.body) else req.body
        response = ingest_client.post(req.path, content=content, headers=req.headers)
        answers.append(response.status_code)
        bodies.append(response.text)  # a problem body: at most 20 problems, never large
    landed_a, rejected_a = raw_for(engine, a.company_id)
    landed_b, rejected_b = raw_for(engine, b.company_id)
    acknowledged = sum(1 for s in answers if 200 <= s < 300)
    record(
        f"bad_input/{probe.name}",
        what=probe.what,
        sent=len(requests),
        answers=sorted(set(answers)),
        acknowledged=acknowledged,
        found=landed_a + landed_b,
        recorded_as_rejected=rejected_a + rejected_b,
        error=json.loads(bodies[0]).get("error", {}).get("code")
        if bodies[0].startswith("{")
        else None,
        message=json.loads(bodies[0]).get("error", {}).get("message")
        if bodies[0].startswith("{")
        else None,
    )
    assert set(answers) == {probe.expect}, f"{answers}: {bodies}"
    assert landed_a + landed_b == probe.lands
    if probe.expect >= 400:
        # A refusal never leaks a 5xx-ish body and always says why.
        assert all(json.loads(body)["error"]["code"] for body in bodies)
    if probe.code:
        error = json.loads(bodies[0])["error"]
        assert error["code"] == probe.code, error
        assert probe.says in error["message"], error


def test_nul_in_path_cannot_fail_other_requests(
    ingest_client: TestClient, engine: sa.Engine, settings: Settings, ids: str
) -> None:
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    from tests.reliability.conftest import make_events

    tenant = make_tenant(engine, settings, f"nul{ids}")
    events = make_events(tenant, 200, ["pos", "careem"])

    def good(event: Any) -> int:
        path, body, headers = event.request(tenant)
        return ingest_client.post(path, content=body, headers=headers).status_code

    def bad() -> int:
        return ingest_client.post(
            "/webhooks/nope/ab%00cd", content=b"{}", headers={"Content-Type": "application/json"}
        ).status_code

    with ThreadPoolExecutor(32) as pool:
        futures = []
        for event in events:
            futures.append(("good", pool.submit(good, event)))
            futures.append(("bad", pool.submit(bad)))
        codes = Counter((kind, f.result()) for kind, f in futures)
    record(
        "bad_input/nul_path_flood",
        what="200 signed events interleaved with 200 unauthenticated /webhooks/nope/ab%00cd",
        sent=400,
        answers=sorted({code for _, code in codes}),
        acknowledged=codes[("good", 200)],
        good_answered_503=codes[("good", 503)],
        found=raw_for(engine, tenant.company_id)[0],
    )
    assert codes[("good", 200)] == len(events), dict(codes)
