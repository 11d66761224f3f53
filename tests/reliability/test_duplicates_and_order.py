"""Fault: duplicate storms (one event 50 times at once) and shuffled arrival order land the
same raw rows as a clean, in-order run of the same service.

Two tenants receive the same synthetic service (ids rewritten per tenant): one in send
order with no redeliveries, the other shuffled, with the sender's redeliveries, and with
20 events each sent 50 times concurrently. Their raw tables must hold the same events,
once each, with the same bodies.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from datetime import time as clock

import sqlalchemy as sa
from fastapi.testclient import TestClient

from ingest.app import create_app
from partner_signals.settings import Settings
from synthetic import DEMO_RESTAURANTS, Delivery, service_day
from tests.ingest.conftest import Tenant, make_tenant
from tests.reliability.conftest import Outgoing, record

STORM_EVENTS = 20
STORM_COPIES = 50


def for_tenant(delivery: Delivery, template: str, tenant: Tenant) -> Outgoing:
    body = delivery.body.replace(template.encode(), tenant.restaurant_id.encode())
    return Outgoing(delivery.source, delivery.event_id, body)


def post(client: TestClient, event: Outgoing, tenant: Tenant) -> int:
    path, body, headers = event.request(tenant)
    return client.post(path, content=body, headers=headers).status_code


def raw_rows(engine: sa.Engine, tenant: Tenant) -> Counter[tuple[str, str, str, str]]:
    """(source, event_id, event_type, body with the tenant's restaurant id neutralised)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select source, event_id, event_type, body from raw.webhook_events "
                "where company_id = :c union all "
                "select source, event_id, event_type, body from raw.order_events "
                "where company_id = :c"
            ),
            {"c": tenant.company_id},
        ).all()
    return Counter(
        (str(s), str(e), str(t), str(b).replace(tenant.restaurant_id, "<restaurant>"))
        for s, e, t, b in rows
    )


def test_duplicate_storm_and_shuffle_match_clean_run(
    engine: sa.Engine, settings: Settings, ids: str
) -> None:
    started = time.monotonic()
    clean_t = make_tenant(engine, settings, f"clean{ids}")
    storm_t = make_tenant(engine, settings, f"storm{ids}")
    template = "r-template"
    spec = replace(
        DEMO_RESTAURANTS[0],
        company_id="co-template",
        restaurant_id=template,
        tables=8,
        services=((clock(12), clock(15)),),
    )
    day = date(2026, 11, 23)
    clean_day = service_day([spec], day, seed=11, duplicate_rate=0.0, late_rate=0.0)
    noisy_day = service_day([spec], day, seed=11, duplicate_rate=0.1, late_rate=0.2)
    assert {d.event_id for d in clean_day} == {d.event_id for d in noisy_day}

    clean = [for_tenant(d, template, clean_t) for d in clean_day]
    noisy = [for_tenant(d, template, storm_t) for d in noisy_day]
    rng = random.Random(5)
    rng.shuffle(noisy)
    storm = rng.sample(noisy, STORM_EVENTS)

    with TestClient(create_app(settings)) as client:
        clean_codes = Counter(post(client, e, clean_t) for e in clean)
        with ThreadPoolExecutor(16) as pool:
            storm_codes = Counter(
                pool.map(lambda e: post(client, e, storm_t), [e for e in storm for _ in range(50)])
            )
            shuffled_codes = Counter(pool.map(lambda e: post(client, e, storm_t), noisy))

    clean_raw = raw_rows(engine, clean_t)
    storm_raw = raw_rows(engine, storm_t)
    record(
        "duplicates_and_shuffle",
        distinct_events=len(clean),
        clean_requests=len(clean),
        clean_answers=dict(clean_codes),
        clean_found=sum(clean_raw.values()),
        storm_events=STORM_EVENTS,
        storm_copies_each=STORM_COPIES,
        storm_requests=sum(storm_codes.values()),
        shuffled_requests_with_redeliveries=len(noisy),
        storm_and_shuffled_answers=dict(storm_codes + shuffled_codes),
        storm_found=sum(storm_raw.values()),
        same_rows_as_clean=clean_raw == storm_raw,
        seconds=round(time.monotonic() - started, 1),
    )
    assert set(clean_codes) == {200}
    assert set(storm_codes) == {200} and set(shuffled_codes) == {200}
    assert sum(clean_raw.values()) == len(clean) == len(clean_raw)
    assert max(storm_raw.values()) == 1
    assert clean_raw == storm_raw
