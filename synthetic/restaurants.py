"""Restaurants and menus to simulate: who they are, where, in what currency, what they serve."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from partner_signals import ids
from synthetic.platforms import DELIVERY_PLATFORMS, DIRECT_PLATFORMS

Course = Literal["drink", "starter", "main", "dessert"]

LUNCH_AND_DINNER: Final[tuple[tuple[time, time], ...]] = (
    (time(12), time(15)),
    (time(18), time(23)),
)
# Stripe's own minor units: the Gulf dinars have three decimals.
CURRENCY_DECIMALS: Final[Mapping[str, int]] = {
    "AED": 2,
    "AUD": 2,
    "BHD": 3,
    "EGP": 2,
    "EUR": 2,
    "GBP": 2,
    "KWD": 3,
    "OMR": 3,
    "QAR": 2,
    "SAR": 2,
    "SGD": 2,
    "USD": 2,
}
# The core's one id rule, compiled (tests match generated ids against it).
ID_PATTERN: Final = re.compile(ids.ID_PATTERN)


@dataclass(frozen=True, slots=True)
class MenuItem:
    """One dish or drink. Prep time (fired → ready) is lognormal around `prep_minutes`;
    `prep_spread` is the sigma of its logarithm (0.25: most plates within about ±25 %)."""

    item_id: str
    name: str
    course: Course
    price_minor: int
    prep_minutes: float
    prep_spread: float = 0.25


@dataclass(frozen=True, slots=True)
class RestaurantSpec:
    """A restaurant to simulate; `menu` needs at least one main. Services are local
    wall-clock windows in `timezone` (an end before its start runs past midnight);
    guests are seated until 45 minutes before a service ends and may stay past it."""

    company_id: str
    restaurant_id: str
    name: str
    timezone: str
    currency: str
    tables: int
    seats_per_table: int = 4
    menu: tuple[MenuItem, ...] = ()
    services: tuple[tuple[time, time], ...] = LUNCH_AND_DINNER
    delivery_platforms: tuple[str, ...] = DIRECT_PLATFORMS

    def __post_init__(self) -> None:
        for label, value in (
            ("company_id", self.company_id),
            ("restaurant_id", self.restaurant_id),
        ):
            ids.check_id(value, label)
        ZoneInfo(self.timezone)
        if self.currency not in CURRENCY_DECIMALS:
            raise ValueError(f"unknown currency {self.currency!r}")
        if self.tables < 1 or self.seats_per_table < 1:
            raise ValueError("a restaurant needs at least one table and one seat")
        if not any(item.course == "main" for item in self.menu):
            raise ValueError("the menu needs at least one main")
        unknown = set(self.delivery_platforms) - set(DELIVERY_PLATFORMS)
        if unknown:
            raise ValueError(f"unknown delivery platforms {sorted(unknown)}")

    @property
    def decimals(self) -> int:
        return CURRENCY_DECIMALS[self.currency]


def _menu(
    currency: str, rows: Iterable[tuple[str, str, Course, str, float, float]]
) -> tuple[MenuItem, ...]:
    scale = 10 ** CURRENCY_DECIMALS[currency]
    items = []
    for item_id, name, course, price, prep, spread in rows:
        minor = Decimal(price) * scale
        if minor != minor.to_integral_value():
            raise ValueError(f"{price} {currency} is not a whole number of minor units")
        items.append(MenuItem(item_id, name, course, int(minor), prep, spread))
    return tuple(items)


# The Gulf, Cairo and London, with the direct delivery platforms: the tests' day and the
# benchmarks' restaurants are cloned from these (the demo runs the whole WORLD below).
DEMO_RESTAURANTS: Final[tuple[RestaurantSpec, ...]] = (
    RestaurantSpec(
        company_id="oasis-dining",
        restaurant_id="dxb-marina",
        name="Oasis Grill, Dubai Marina",
        timezone="Asia/Dubai",
        currency="AED",
        tables=16,
        menu=_menu(
            "AED",
            [
                ("lemon-mint", "Lemon mint", "drink", "22.00", 2.0, 0.3),
                ("turkish-coffee", "Turkish coffee", "drink", "18.00", 2.5, 0.3),
                ("hummus", "Hummus", "starter", "32.00", 3.0, 0.3),
                ("fattoush", "Fattoush salad", "starter", "36.00", 4.0, 0.25),
                ("halloumi", "Grilled halloumi", "starter", "42.00", 6.0, 0.3),
                ("shawarma-plate", "Chicken shawarma plate", "main", "58.00", 7.0, 0.25),
                ("burger", "Wagyu burger", "main", "68.00", 9.0, 0.2),
                ("sea-bass", "Grilled sea bass", "main", "110.00", 12.0, 0.2),
                ("ribeye", "Ribeye steak", "main", "185.00", 15.0, 0.25),
                ("mixed-grill", "Mixed grill", "main", "125.00", 17.0, 0.2),
                ("kunafa", "Kunafa", "dessert", "38.00", 5.0, 0.3),
            ],
        ),
    ),
    RestaurantSpec(
        company_id="oasis-dining",
        restaurant_id="ruh-olaya",
        name="Oasis Grill, Olaya",
        timezone="Asia/Riyadh",
        currency="SAR",
        tables=15,
        seats_per_table=6,
        menu=_menu(
            "SAR",
            [
                ("arabic-coffee", "Arabic coffee", "drink", "15.00", 2.0, 0.3),
                ("saudi-salad", "Saudi salad", "starter", "22.00", 4.0, 0.25),
                ("sambousek", "Cheese sambousek", "starter", "28.00", 6.0, 0.3),
                ("chicken-kabsa", "Chicken kabsa", "main", "64.00", 12.0, 0.2),
                ("lamb-mandi", "Lamb mandi", "main", "95.00", 18.0, 0.2),
                ("burger", "Smash burger", "main", "55.00", 9.0, 0.2),
                ("hammour", "Grilled hammour", "main", "120.00", 14.0, 0.25),
                ("umm-ali", "Umm ali", "dessert", "32.00", 8.0, 0.3),
                ("dates-platter", "Dates platter", "dessert", "28.00", 2.0, 0.3),
            ],
        ),
    ),
    RestaurantSpec(
        company_id="oasis-dining",
        restaurant_id="kwt-city",
        name="Oasis Grill, Kuwait City",
        timezone="Asia/Kuwait",
        currency="KWD",
        tables=12,
        menu=_menu(
            "KWD",
            [
                ("karak", "Karak tea", "drink", "0.750", 2.0, 0.3),
                ("mutabbal", "Mutabbal", "starter", "1.500", 3.0, 0.3),
                ("fattoush", "Fattoush salad", "starter", "1.750", 4.0, 0.25),
                ("shawarma", "Shawarma", "main", "1.250", 6.0, 0.25),
                ("burger", "Angus burger", "main", "3.250", 9.0, 0.2),
                ("machboos", "Chicken machboos", "main", "4.500", 15.0, 0.2),
                ("steak", "Striploin steak", "main", "7.900", 15.0, 0.25),
                ("lugaimat", "Lugaimat", "dessert", "1.500", 6.0, 0.3),
                ("basbousa", "Basbousa", "dessert", "1.250", 3.0, 0.3),
            ],
        ),
    ),
    RestaurantSpec(
        company_id="albion-kitchens",
        restaurant_id="ldn-soho",
        name="Albion Kitchen, Soho",
        timezone="Europe/London",
        currency="GBP",
        tables=14,
        menu=_menu(
            "GBP",
            [
                ("flat-white", "Flat white", "drink", "3.80", 2.0, 0.3),
                ("soup", "Soup of the day", "starter", "7.50", 3.0, 0.3),
                ("caesar-salad", "Caesar salad", "starter", "9.00", 4.0, 0.25),
                ("burrata", "Burrata", "starter", "11.50", 4.5, 0.25),
                ("fish-chips", "Fish & chips", "main", "17.50", 10.0, 0.2),
                ("burger", "Dry-aged burger", "main", "16.00", 9.0, 0.2),
                ("steak", "Sirloin steak", "main", "32.00", 15.0, 0.25),
                ("risotto", "Wild mushroom risotto", "main", "18.00", 18.0, 0.15),
                ("sticky-toffee", "Sticky toffee pudding", "dessert", "8.00", 5.0, 0.3),
                ("ice-cream", "Ice cream", "dessert", "6.00", 2.0, 0.3),
            ],
        ),
    ),
    RestaurantSpec(
        company_id="nile-house",
        restaurant_id="cai-zamalek",
        name="Nile House, Zamalek",
        timezone="Africa/Cairo",
        currency="EGP",
        tables=16,
        menu=_menu(
            "EGP",
            [
                ("hibiscus", "Hibiscus", "drink", "45.00", 2.0, 0.3),
                ("tahini-salad", "Tahini salad", "starter", "60.00", 3.0, 0.3),
                ("falafel", "Falafel", "starter", "75.00", 5.0, 0.3),
                ("koshari", "Koshari", "main", "140.00", 6.0, 0.25),
                ("kofta", "Kofta", "main", "260.00", 11.0, 0.2),
                ("molokhia", "Molokhia with chicken", "main", "210.00", 12.0, 0.2),
                ("steak", "Grilled steak", "main", "520.00", 15.0, 0.25),
                ("om-ali", "Om ali", "dessert", "110.00", 8.0, 0.3),
                ("basbousa", "Basbousa", "dessert", "90.00", 3.0, 0.3),
            ],
        ),
    ),
)

# Across the Americas and Asia-Pacific, so that whenever the demo runs some restaurant is
# in the middle of a service (tests/synthetic/test_restaurants.py checks every quarter
# hour of a winter and a summer day). They take delivery orders through Deliverect, the
# aggregator, as restaurants there commonly do, instead of direct platform webhooks.
AROUND_THE_CLOCK: Final[tuple[RestaurantSpec, ...]] = (
    RestaurantSpec(
        company_id="albion-kitchens",
        restaurant_id="nyc-west-village",
        name="Albion Kitchen, West Village",
        timezone="America/New_York",
        currency="USD",
        tables=14,
        services=((time(11, 30), time(15)), (time(17), time(23))),
        delivery_platforms=("deliverect",),
        menu=_menu(
            "USD",
            [
                ("cold-brew", "Cold brew", "drink", "6.00", 1.5, 0.3),
                ("clam-chowder", "Clam chowder", "starter", "12.00", 3.0, 0.3),
                ("wedge-salad", "Wedge salad", "starter", "14.00", 4.0, 0.25),
                ("burger", "Dry-aged burger", "main", "24.00", 9.0, 0.2),
                ("fish-chips", "Fish & chips", "main", "26.00", 10.0, 0.2),
                ("steak-frites", "Steak frites", "main", "42.00", 15.0, 0.25),
                ("roast-chicken", "Half roast chicken", "main", "32.00", 16.0, 0.2),
                ("sticky-toffee", "Sticky toffee pudding", "dessert", "12.00", 5.0, 0.3),
                ("cheesecake", "Cheesecake", "dessert", "11.00", 2.0, 0.3),
            ],
        ),
    ),
    RestaurantSpec(
        company_id="pacific-table",
        restaurant_id="lax-silver-lake",
        name="Pacific Table, Silver Lake",
        timezone="America/Los_Angeles",
        currency="USD",
        tables=12,
        delivery_platforms=("deliverect",),
        menu=_menu(
            "USD",
            [
                ("horchata", "Horchata", "drink", "5.00", 1.5, 0.3),
                ("guacamole", "Guacamole", "starter", "13.00", 3.0, 0.3),
                ("aguachile", "Shrimp aguachile", "starter", "17.00", 5.0, 0.25),
                ("fish-tacos", "Baja fish tacos", "main", "19.00", 8.0, 0.2),
                ("poke-bowl", "Poke bowl", "main", "21.00", 6.0, 0.25),
                ("burger", "Smash burger", "main", "18.00", 9.0, 0.2),
                ("carne-asada", "Carne asada", "main", "34.00", 15.0, 0.25),
                ("churros", "Churros", "dessert", "9.00", 5.0, 0.3),
            ],
        ),
    ),
    RestaurantSpec(
        company_id="pacific-table",
        restaurant_id="syd-surry-hills",
        name="Pacific Table, Surry Hills",
        timezone="Australia/Sydney",
        currency="AUD",
        tables=14,
        delivery_platforms=("deliverect",),
        menu=_menu(
            "AUD",
            [
                ("flat-white", "Flat white", "drink", "5.50", 2.0, 0.3),
                ("burrata", "Burrata", "starter", "22.00", 4.0, 0.25),
                ("kingfish", "Kingfish crudo", "starter", "26.00", 5.0, 0.25),
                ("barramundi", "Barramundi", "main", "39.00", 12.0, 0.2),
                ("lamb-shoulder", "Slow lamb shoulder", "main", "46.00", 14.0, 0.2),
                ("burger", "Wagyu burger", "main", "29.00", 9.0, 0.2),
                ("gnocchi", "Gnocchi", "main", "32.00", 10.0, 0.2),
                ("pavlova", "Pavlova", "dessert", "16.00", 3.0, 0.3),
                ("lamington", "Lamington", "dessert", "12.00", 2.0, 0.3),
            ],
        ),
    ),
    RestaurantSpec(
        company_id="pacific-table",
        restaurant_id="sin-tanjong-pagar",
        name="Pacific Table, Tanjong Pagar",
        timezone="Asia/Singapore",
        currency="SGD",
        tables=12,
        # All day, kitchen open through the afternoon, as many Singapore places are.
        services=((time(11), time(23)),),
        delivery_platforms=("deliverect",),
        menu=_menu(
            "SGD",
            [
                ("kopi", "Kopi", "drink", "4.50", 1.5, 0.3),
                ("satay", "Chicken satay", "starter", "14.00", 6.0, 0.25),
                ("popiah", "Popiah", "starter", "10.00", 4.0, 0.3),
                ("laksa", "Laksa", "main", "18.00", 7.0, 0.25),
                ("chicken-rice", "Hainanese chicken rice", "main", "16.00", 5.0, 0.25),
                ("chilli-crab", "Chilli crab", "main", "68.00", 18.0, 0.2),
                ("char-kway-teow", "Char kway teow", "main", "17.00", 6.0, 0.25),
                ("chendol", "Chendol", "dessert", "8.00", 2.0, 0.3),
            ],
        ),
    ),
)
# The demo's world: the five above, and the four that keep it in service at any hour.
WORLD: Final[tuple[RestaurantSpec, ...]] = DEMO_RESTAURANTS + AROUND_THE_CLOCK

# How long after a service opens it counts as under way: the first tables are seated and
# ordering, bills start to come (the first party is seated within about 25 minutes).
SETTLED_IN: Final = timedelta(minutes=45)


def in_service(spec: RestaurantSpec, now: datetime) -> tuple[datetime, datetime] | None:
    """The service `spec` is in the middle of at `now` (its local start and end), or
    None: open for at least SETTLED_IN and not yet over (guests seated before the end
    stay past it, so its last minutes count)."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    tz = ZoneInfo(spec.timezone)
    local = now.astimezone(tz).date()
    for day in (local - timedelta(days=1), local):
        for start, end in spec.services:
            opened = datetime.combine(day, start, tzinfo=tz)
            closes = datetime.combine(day + timedelta(days=1) if end <= start else day, end, tz)
            if opened + SETTLED_IN <= now < closes:
                return opened, closes
    return None


def serving(restaurants: Iterable[RestaurantSpec], now: datetime) -> list[RestaurantSpec]:
    """The restaurants in the middle of a service at `now`."""
    return [spec for spec in restaurants if in_service(spec, now) is not None]


# An order's lines: each dish once, with its quantity.
Lines = list[tuple[MenuItem, int]]


def merge_lines(items: list[MenuItem]) -> Lines:
    """Lines from picked items: the same dish twice is one line of quantity two."""
    counts: dict[str, list[Any]] = {}
    for item in items:
        entry = counts.setdefault(item.item_id, [item, 0])
        entry[1] += 1
    return [(entry[0], entry[1]) for entry in counts.values()]


def lines_total(lines: Lines) -> int:
    """What the lines cost, in minor units."""
    return sum(item.price_minor * quantity for item, quantity in lines)
