"""One synthetic day for all the synthetic tests: building it is the slow part."""

from __future__ import annotations

import pytest

from partner_signals.providers.paypal import make_test_certificate
from synthetic import WORLD, Delivery, service_day
from tests.synthetic.days import DAY, SEED


@pytest.fixture(scope="session")
def day() -> list[Delivery]:
    """The demo world's day: the Gulf, Cairo and London, and the four around the clock."""
    return service_day(WORLD, DAY, seed=SEED)


@pytest.fixture(scope="session")
def calm_day() -> list[Delivery]:
    """The same day sent without redeliveries or delays."""
    return service_day(WORLD, DAY, seed=SEED, duplicate_rate=0, late_rate=0)


@pytest.fixture(scope="session")
def paypal_pair() -> tuple[str, str]:
    return make_test_certificate()
