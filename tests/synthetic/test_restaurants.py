"""The restaurants to simulate: demo tenants across companies, zones and currencies; bad specs refused."""

from __future__ import annotations

import pytest

from synthetic import DEMO_RESTAURANTS, ID_PATTERN, RestaurantSpec


def test_demo_restaurants_span_companies_zones_and_currencies() -> None:
    assert len(DEMO_RESTAURANTS) == 5
    assert len({r.company_id for r in DEMO_RESTAURANTS}) == 3
    assert len({r.timezone for r in DEMO_RESTAURANTS}) == 5
    for r in DEMO_RESTAURANTS:
        assert ID_PATTERN.match(r.company_id)
        assert ID_PATTERN.match(r.restaurant_id)
        assert 8 <= len(r.menu) <= 12
    assert {r.restaurant_id: r.currency for r in DEMO_RESTAURANTS}.items() >= {
        "dxb-marina": "AED",
        "ldn-soho": "GBP",
        "ruh-olaya": "SAR",
        "kwt-city": "KWD",
    }.items()


def test_a_spec_with_a_bad_id_is_refused() -> None:
    with pytest.raises(ValueError, match="restaurant_id"):
        RestaurantSpec(
            company_id="c",
            restaurant_id="bad id",
            name="x",
            timezone="UTC",
            currency="GBP",
            tables=1,
            menu=DEMO_RESTAURANTS[0].menu,
        )
