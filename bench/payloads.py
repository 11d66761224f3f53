"""Bodies for the benchmark: signed Stripe webhooks for wrk and an NDJSON file of POS events."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from partner_signals.providers.stripe import STRIPE

POS_TEMPLATES = (
    '{{"event_id":"{id}","type":"table.seated","occurred_at":"{at}","restaurant_id":"{r}",'
    '"table_id":"t{table}","data":{{"covers":4}}}}',
    '{{"event_id":"{id}","type":"order.created","occurred_at":"{at}","restaurant_id":"{r}",'
    '"order_id":"o{order}","table_id":"t{table}","data":{{"channel":"dine_in","covers":4}}}}',
    '{{"event_id":"{id}","type":"order.item_added","occurred_at":"{at}","restaurant_id":"{r}",'
    '"order_id":"o{order}","table_id":"t{table}","data":{{"line_id":"l1","item_id":"shawarma",'
    '"item_name":"Chicken shawarma","quantity":2,"unit_price":24.00,"currency":"AED"}}}}',
    '{{"event_id":"{id}","type":"order.paid","occurred_at":"{at}","restaurant_id":"{r}",'
    '"order_id":"o{order}","table_id":"t{table}","data":{{"amount":96.00,"currency":"AED",'
    '"payment_ref":"pay-1"}}}}',
)


def write_stripe_bodies(
    prefix: Path, *, count: int, threads: int, secret: str, restaurant_id: str, tag: str
) -> int:
    """Write `count` uniquely identified, freshly signed Stripe events, split over one file
    per wrk thread (`<prefix>.<n>`, n from 1), as "<Stripe-Signature>\\t<body>" lines."""
    now = time.time()
    created = int(now)
    files = [prefix.with_name(f"{prefix.name}.{n}").open("w") for n in range(1, threads + 1)]
    try:
        for i in range(count):
            body = orjson.dumps(
                {
                    "id": f"evt_{tag}_{i}",
                    "object": "event",
                    "type": "payment_intent.succeeded",
                    "created": created,
                    "livemode": False,
                    "api_version": "2024-06-20",
                    "data": {
                        "object": {
                            "id": f"pi_{tag}_{i}",
                            "object": "payment_intent",
                            "amount": 9600,
                            "amount_received": 9600,
                            "currency": "aed",
                            "status": "succeeded",
                            "created": created,
                            "metadata": {
                                "restaurant_id": restaurant_id,
                                "order_id": f"o{i}",
                                "table_id": f"t{i % 40}",
                            },
                        }
                    },
                }
            )
            signature = STRIPE.sign(body, secret, now)["Stripe-Signature"]
            files[i % threads].write(f"{signature}\t{body.decode()}\n")
    finally:
        for fh in files:
            fh.close()
    return count


def write_pos_ndjson(path: Path, *, count: int, restaurant_ids: list[str], tag: str) -> int:
    """Write `count` valid POS events (unique event ids) as NDJSON; returns the byte size."""
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    size = 0
    block = 10_000
    with path.open("w") as fh:
        for start in range(0, count, block):
            lines = []
            for i in range(start, min(start + block, count)):
                lines.append(
                    POS_TEMPLATES[i % 4].format(
                        id=f"{tag}-{i}",
                        at=at,
                        r=restaurant_ids[i % len(restaurant_ids)],
                        order=i // 4,
                        table=i % 40,
                    )
                )
            text = "\n".join(lines) + "\n"
            size += len(text)
            fh.write(text)
    return size
