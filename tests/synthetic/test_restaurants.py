"""The restaurants to simulate: demo tenants across companies, zones and currencies, some
always in the middle of a service; bad specs refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from synthetic import (
    AROUND_THE_CLOCK,
    DEMO_RESTAURANTS,
    ID_PATTERN,
    WORLD,
    RestaurantSpec,
    in_service,
    serving,
)


def test_demo_restaurants_span_companies_zones_and_currencies() -> None:
    assert len(DEMO_RESTAURANTS) == 5
    assert len({r.company_id for r in DEMO_RESTAURANTS}) == 3
    assert len({r.timezone for r in DEMO_RESTAURANTS}) == 5
    for r in WORLD:
        assert ID_PATTERN.match(r.company_id)
        assert ID_PATTERN.match(r.restaurant_id)
        assert 8 <= len(r.menu) <= 12
    assert {r.restaurant_id: r.currency for r in DEMO_RESTAURANTS}.items() >= {
        "dxb-marina": "AED",
        "ldn-soho": "GBP",
        "ruh-olaya": "SAR",
        "kwt-city": "KWD",
    }.items()


def test_the_world_adds_the_americas_and_asia_pacific() -> None:
    assert WORLD[: len(DEMO_RESTAURANTS)] == DEMO_RESTAURANTS
    assert len({r.restaurant_id for r in WORLD}) == len(WORLD) == 9
    assert {r.timezone for r in AROUND_THE_CLOCK} == {
        "America/New_York",
        "America/Los_Angeles",
        "Australia/Sydney",
        "Asia/Singapore",
    }
    # a company with restaurants in two currencies: money is never added across them
    albion = {r.currency for r in WORLD if r.company_id == "albion-kitchens"}
    assert albion == {"GBP", "USD"}


@pytest.mark.parametrize("hour_minute", [(0, 30), (6, 0), (12, 0), (18, 0)])
@pytest.mark.parametrize("day", [date(2026, 1, 15), date(2026, 7, 15)], ids=["winter", "summer"])
def test_some_restaurant_is_mid_service_when_the_demo_runs(
    day: date, hour_minute: tuple[int, int]
) -> None:
    now = datetime.combine(day, time(*hour_minute), tzinfo=UTC)
    live = serving(WORLD, now)
    assert live, now
    for spec in live:
        opened, closes = in_service(spec, now) or (now, now)
        assert opened + timedelta(minutes=45) <= now < closes


@pytest.mark.parametrize("day", [date(2026, 1, 15), date(2026, 7, 15)], ids=["winter", "summer"])
def test_every_quarter_hour_of_the_day_has_a_live_service(day: date) -> None:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    quiet = [
        f"{now:%H:%M}"
        for now in (start + timedelta(minutes=15 * i) for i in range(96))
        if not serving(WORLD, now)
    ]
    assert quiet == []


def test_a_service_counts_once_it_has_settled_in_until_it_ends() -> None:
    soho = next(r for r in WORLD if r.restaurant_id == "ldn-soho")  # GMT in January
    winter = date(2026, 1, 15)

    def at(h: int, m: int) -> datetime:
        return datetime.combine(winter, time(h, m), tzinfo=UTC)

    assert in_service(soho, at(12, 30)) is None  # lunch opened half an hour ago
    opened, closes = in_service(soho, at(12, 45)) or (None, None)
    assert opened is not None and closes is not None
    assert (opened.time(), closes.time()) == (time(12), time(15))
    assert in_service(soho, at(15, 0)) is None
    assert in_service(soho, at(22, 59)) is not None


def test_a_service_past_midnight_is_live_after_midnight() -> None:
    late = RestaurantSpec(
        company_id="c",
        restaurant_id="late-night",
        name="Late night",
        timezone="UTC",
        currency="GBP",
        tables=1,
        menu=DEMO_RESTAURANTS[3].menu,
        services=((time(21), time(2)),),
    )
    assert in_service(late, datetime(2026, 1, 16, 1, 0, tzinfo=UTC)) is not None
    assert in_service(late, datetime(2026, 1, 16, 2, 0, tzinfo=UTC)) is None
    with pytest.raises(ValueError, match="aware"):
        in_service(late, datetime(2026, 1, 16, 1, 0))


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


def test_a_spec_with_an_unknown_platform_is_refused() -> None:
    with pytest.raises(ValueError, match="delivery platforms"):
        RestaurantSpec(
            company_id="c",
            restaurant_id="r",
            name="x",
            timezone="UTC",
            currency="GBP",
            tables=1,
            menu=DEMO_RESTAURANTS[0].menu,
            delivery_platforms=("ubereats",),
        )
