"""The platforms' outbound call shapes as declared in their catalogue entries, the requests
built from them, the status ranking, and the POS format's delivery fields. No server."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from partner_signals.adapters import Message, Target
from partner_signals.catalogue.sources import CatalogueError, delivery_platform_names
from partner_signals.platforms.adapter import PLATFORM_ADAPTERS
from partner_signals.platforms.shapes import parse_shape, shapes
from partner_signals.platforms.sync import ranked
from partner_signals.pos import InvalidPosEvent, parse_pos_event

VALID = {
    "api_base_url": "https://api.example.test",
    "auth": {"kind": "api_key", "header": "X-Key"},
    "status_calls": {"accepted": {"method": "POST", "path": "/o/{external_order_id}"}},
}


def test_every_delivery_platform_declares_its_status_calls() -> None:
    assert sorted(shapes()) == sorted(delivery_platform_names())
    assert sorted(PLATFORM_ADAPTERS) == sorted(f"{p}-api" for p in delivery_platform_names())
    for shape in shapes().values():
        assert "accepted" in shape.status_calls
        assert shape.api_base_url.startswith("https://")


def test_one_valid_shape_then_one_broken_thing_each() -> None:
    assert parse_shape("x", VALID).status_calls["accepted"].method == "POST"
    broken = [
        {**VALID, "api_base_url": "http://api.example.test"},
        {**VALID, "auth": {"kind": "basic"}},
        {**VALID, "auth": {"kind": "oauth_client_credentials"}},
        {**VALID, "status_calls": {}},
        {**VALID, "status_calls": {"eaten": VALID["status_calls"]["accepted"]}},
        {**VALID, "status_calls": {"accepted": {"method": "GET", "path": "/o"}}},
        {**VALID, "status_calls": {"accepted": {"method": "POST", "path": "o"}}},
        {**VALID, "status_calls": {"accepted": {"method": "POST", "path": "/o/{guest_phone}"}}},
        {
            **VALID,
            "status_calls": {"accepted": {"method": "POST", "path": "/o", "body": {"a": "{x}"}}},
        },
    ]
    for shape in broken:
        with pytest.raises(CatalogueError):
            parse_shape("x", shape)


def message(status: str, **extra: object) -> Message:
    payload = {
        "platform": "deliverect",
        "status": status,
        "external_order_id": "ord/1 2",
        "pos_order_id": "p-1",
        "restaurant_id": "r-1",
        "occurred_at": datetime(2026, 12, 4, 18, 0, tzinfo=UTC).isoformat(),
        "reason": None,
        **extra,
    }
    return Message(1, "9:deliverect:ord/1 2:" + status, "e-1", "platform." + status, 1, payload, 1)


def test_a_request_keeps_json_types_quotes_the_path_and_carries_the_idempotency_key() -> None:
    adapter = PLATFORM_ADAPTERS["deliverect-api"]
    target = Target(9, "deliverect-api", "c", None, {"api_base_url": "http://127.0.0.1:9"}, {})
    req = adapter.build_request(target, message("preparing"), now=0.0, token="tok")
    assert (req.method, req.url) == ("POST", "http://127.0.0.1:9/orderStatus/ord%2F1%202")
    assert orjson.loads(req.content) == {
        "orderId": "ord/1 2",
        "status": 50,
        "timeStamp": "2026-12-04T18:00:00+00:00",
    }
    assert req.headers["authorization"] == "Bearer tok"
    assert req.headers["idempotency-key"] == "9:deliverect:ord/1 2:preparing"


def test_an_api_key_goes_in_the_declared_header_and_production_is_the_default() -> None:
    adapter = PLATFORM_ADAPTERS["jahez-api"]
    target = Target(3, "jahez-api", "c", None, {}, {"api_key": "k-123456789"})
    req = adapter.build_request(target, message("rejected", reason="closed"), now=0.0)
    assert req.url == "https://integration-api.jahez.net/orders/status"
    assert req.headers["x-api-key"] == "k-123456789"
    assert orjson.loads(req.content) == {"jahez_id": "ord/1 2", "status": "R", "reason": "closed"}
    assert "k-123456789" not in repr(target)


def test_statuses_never_move_backwards_or_out_of_an_end() -> None:
    assert ranked("received", "accepted") == "accepted"
    assert ranked("ready", "preparing") == "ready"
    assert ranked("ready", "picked_up") == "picked_up"
    assert ranked("delivered", "cancelled") == "cancelled"
    assert ranked("cancelled", "ready") == "cancelled"
    assert ranked("rejected", "cancelled") == "rejected"


def pos_event(kind: str, **data: object) -> bytes:
    return orjson.dumps(
        {
            "event_id": "e-1",
            "type": kind,
            "occurred_at": "2026-12-04T18:00:00+04:00",
            "restaurant_id": "r-1",
            "order_id": "o-1",
            "data": data,
        }
    )


def test_the_pos_names_a_platform_order_and_rejects_one() -> None:
    created = parse_pos_event(
        pos_event("order.created", channel="delivery", platform="talabat", platform_order_id="t-1")
    )
    assert (created.data.platform, created.data.platform_order_id) == ("talabat", "t-1")
    assert parse_pos_event(pos_event("order.rejected", reason="closed")).data.reason == "closed"
    with pytest.raises(InvalidPosEvent, match="go together"):
        parse_pos_event(pos_event("order.created", channel="delivery", platform="talabat"))
    with pytest.raises(InvalidPosEvent, match="platform"):
        parse_pos_event(pos_event("order.created", platform="Talabat!", platform_order_id="t"))
