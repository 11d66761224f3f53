"""bench.serve's pure parts: percentiles, the live window, matching posted events to what
the marts show. (The scenario itself runs `serve` for minutes: `python -m bench.serve`.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from bench.serve import (
    Posted,
    Spread,
    busiest_start,
    counted_orders,
    latencies,
    mart_events,
    percentile,
    stamped,
    velocity_ranks,
)
from synthetic import Delivery


def event(
    event_id: str,
    kind: str,
    order_id: str | None,
    *,
    occurred: float,
    posted: float,
    restaurant: str = "r1",
) -> Posted:
    return Posted(event_id, kind, restaurant, order_id, occurred, posted, live=True)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 51.0  # rank round(0.5 * 99) = 50 (0-based)
    assert percentile(values, 95) == 95.0
    assert percentile([3.0], 95) == 3.0
    assert Spread.of([2.0, 1.0, 9.0]) == Spread(3, 2.0, 9.0, 9.0)
    assert Spread.of([]) is None
    with pytest.raises(ValueError):
        percentile([], 50)


def test_the_live_window_starts_at_the_busiest_minute() -> None:
    quiet = [60.0 * n for n in range(10)]  # one a minute
    rush = [600.0 + n for n in range(0, 120, 2)]  # 60 in two minutes from 10:00
    assert busiest_start(quiet + rush, window_s=120) == 600.0


def test_an_order_counts_in_velocity_once_the_mart_counts_that_many() -> None:
    posted = [
        # two orders opened in the 00:00 interval, one in 00:15 (by its earliest event)
        event("a1", "order.created", "a", occurred=10.0, posted=100.0),
        event("b1", "order.created", "b", occurred=20.0, posted=101.0),
        event("a2", "order.item_added", "a", occurred=30.0, posted=102.0),
        event("c1", "order.created", "c", occurred=905.0, posted=103.0),
        event("t1", "table.seated", None, occurred=5.0, posted=99.0),
    ]
    ranks = velocity_ranks(posted)
    assert ranks == {("r1", 0.0): ["a", "b"], ("r1", 900.0): ["c"]}
    assert counted_orders(ranks, {("r1", 0.0): 1}) == {("r1", "a")}
    assert counted_orders(ranks, {("r1", 0.0): 2, ("r1", 900.0): 1}) == {
        ("r1", "a"),
        ("r1", "b"),
        ("r1", "c"),
    }


def test_an_order_first_seen_through_a_later_event_counts_from_that_post() -> None:
    # The item was posted before the creation (sent late): the order counts from the
    # item's post on, in the interval of its earliest occurrence.
    posted = [
        event("x2", "order.item_added", "x", occurred=950.0, posted=200.0),
        event("y1", "order.created", "y", occurred=920.0, posted=201.0),
        event("x1", "order.created", "x", occurred=940.0, posted=202.0),
    ]
    assert velocity_ranks(posted) == {("r1", 900.0): ["x", "y"]}


def test_payments_are_matched_only_for_orders_with_a_bill_request() -> None:
    posted = [
        event("o1", "order.created", "o", occurred=1.0, posted=1.0),
        event("o2", "order.bill_requested", "o", occurred=2.0, posted=2.0),
        event("o3", "order.paid", "o", occurred=3.0, posted=3.0),
        event("k3", "order.paid", "takeaway", occurred=3.0, posted=3.0),
        event("o4", "order.item_fired", "o", occurred=4.0, posted=4.0),
    ]
    assert [p.event_id for p in mart_events(posted)] == ["o1", "o2", "o3"]


def test_latency_is_first_seen_minus_posted_for_what_was_seen() -> None:
    posted = [
        event("a", "order.created", "a", occurred=0.0, posted=100.0),
        event("b", "order.created", "b", occurred=0.0, posted=101.5),
    ]
    assert latencies(posted, {"a": 130.0}) == [30.0]


def test_a_restamped_body_moves_occurred_at_with_the_send_time() -> None:
    sent = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
    body = orjson.dumps(
        {
            "event_id": "e1",
            "type": "order.created",
            "occurred_at": "2026-12-02T19:59:58.500+04:00",
            "restaurant_id": "dxb-1",
            "order_id": "o1",
            "data": {},
        }
    )
    delivery = Delivery(
        "pos", "co", "dxb-1", "e1", "order.created", body, sent - timedelta(seconds=1.5), sent
    )
    now = datetime(2026, 12, 3, 21, 0, tzinfo=UTC).timestamp()
    new_body, occurred = stamped(delivery, now, {"dxb-1": ZoneInfo("Asia/Dubai")})
    assert occurred == now - 1.5
    assert orjson.loads(new_body)["occurred_at"] == "2026-12-04T00:59:58.500+04:00"
    assert orjson.loads(new_body)["order_id"] == "o1"
