"""Bad input, fuzzed at the parsers: every provider's verify and identify, and the POS format.

Whatever arrives, a parser either accepts it or raises its one documented error
(SignatureError, MalformedEvent, InvalidPosEvent), which the ingest app turns into a
clear 4xx. Any other exception would be a 500 and, in a worker, a crash.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers

from partner_signals.catalogue.sources import sources
from partner_signals.pos import InvalidPosEvent, PosEvent, parse_pos_event
from partner_signals.providers import PROVIDERS, Credentials, MalformedEvent, SignatureError
from tests.ingest.conftest import PAYPAL_CERT, PAYPAL_KEY

SECRET = "whsec_fuzz_secret"
CREDS = {
    name: Credentials(secrets=(SECRET, "whsec_previous"))
    if name != "paypal"
    else Credentials(config={"webhook_id": "WH-fuzz", "certificates": [PAYPAL_CERT]})
    for name in PROVIDERS
}
# Every header a catalogued signature scheme reads, and PayPal's optional algorithm.
SIGNATURE_HEADERS = sorted(
    {h for source in sources() for h in source.signature.headers} | {"paypal-auth-algo"}
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Header values as a server would hand them over: latin-1 text, no line breaks.
header_value = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    max_size=120,
)
headers_strategy = st.dictionaries(st.sampled_from(SIGNATURE_HEADERS), header_value, max_size=6)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)


def _headers(values: dict[str, str]) -> Headers:
    return Headers(raw=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in values.items()])


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@FUZZ
@given(body=st.binary(max_size=2048), values=headers_strategy, skew=st.integers(-(10**6), 10**6))
def test_verify_only_raises_signature_error(
    provider: str, body: bytes, values: dict[str, str], skew: int
) -> None:
    handler = PROVIDERS[provider]
    try:
        handler.verify(body, _headers(values), CREDS[provider], time.time() + skew)
    except SignatureError:
        return
    pytest.fail(f"{provider} accepted an unsigned body with headers {values!r}")


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@FUZZ
@given(body=st.binary(max_size=1024), skew=st.integers(-600, 600))
def test_verify_accepts_own_signature_within_tolerance_only(
    provider: str, body: bytes, skew: int
) -> None:
    """Arbitrary bytes signed correctly: accepted inside the 300 s tolerance (for the
    schemes that carry a time), refused with SignatureError outside; never another error."""
    handler = PROVIDERS[provider]
    now = time.time()
    if provider == "stripe":
        try:
            body.decode()
        except UnicodeDecodeError:
            body = body.decode("utf-8", "replace").encode()
    secret = PAYPAL_KEY if provider == "paypal" else SECRET
    signing_id = "WH-fuzz" if provider == "paypal" else "guid-1"
    signed = handler.sign(body, secret, now + skew, signing_id)
    timed = provider in ("stripe", "paypal")
    try:
        handler.verify(
            body, _headers({k.lower(): v for k, v in signed.items()}), CREDS[provider], now
        )
    except SignatureError:
        assert timed and abs(skew) > 299, f"{provider} refused its own signature (skew {skew})"
        return
    assert not timed or abs(skew) <= 301


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@FUZZ
@given(payload=json_values, values=headers_strategy)
def test_identify_names_or_refuses(provider: str, payload: Any, values: dict[str, str]) -> None:
    try:
        event_id, event_type = PROVIDERS[provider].identify(payload, _headers(values))
    except MalformedEvent as exc:
        assert str(exc)
        return
    assert isinstance(event_id, str) and 0 < len(event_id) <= 256
    assert isinstance(event_type, str) and 0 < len(event_type) <= 256


# POS: arbitrary bytes, arbitrary JSON, and near-valid events with one field broken.
VALID_POS: dict[str, Any] = {
    "event_id": "e-1",
    "type": "order.item_fired",
    "occurred_at": "2026-11-23T19:04:05+04:00",
    "restaurant_id": "r-1",
    "order_id": "o-1",
    "table_id": "t-1",
    "data": {"line_id": "l1", "item_id": "burger", "quantity": 1, "unit_price": 4.5},
}
pos_fields = st.sampled_from(sorted(VALID_POS))
data_fields = st.sampled_from(
    ["covers", "channel", "line_id", "item_id", "quantity", "unit_price", "amount", "currency"]
)


def _parse(raw: bytes | str) -> None:
    try:
        event = parse_pos_event(raw)
    except InvalidPosEvent as exc:
        assert str(exc)
        return
    assert isinstance(event, PosEvent)
    assert event.occurred_at.utcoffset() is not None


@FUZZ
@given(raw=st.binary(max_size=2048))
def test_pos_arbitrary_bytes(raw: bytes) -> None:
    _parse(raw)


@FUZZ
@given(payload=json_values)
def test_pos_arbitrary_json(payload: Any) -> None:
    _parse(json.dumps(payload))


@FUZZ
@given(
    field=pos_fields,
    data_field=data_fields,
    value=json_values,
    data_value=json_values,
    kind=st.sampled_from(
        [
            "order.item_fired",
            "table.seated",
            "table.cleared",
            "order.created",
            "order.paid",
            "order.bill_requested",
            "order.cancelled",
            "anything.else",
        ]
    ),
)
def test_pos_one_field_broken(
    field: str, data_field: str, value: Any, data_value: Any, kind: str
) -> None:
    event = {**VALID_POS, "type": kind, "data": dict(VALID_POS["data"])}
    event[field] = value
    if isinstance(event.get("data"), dict):
        event["data"][data_field] = data_value
    _parse(json.dumps(event))
