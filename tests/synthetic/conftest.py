"""One synthetic day for all the synthetic tests: building it is the slow part."""

from __future__ import annotations

import pytest

from partner_signals.providers.paypal import make_test_certificate
from synthetic import DEMO_RESTAURANTS, Delivery, service_day
from tests.synthetic.days import DAY, SEED


@pytest.fixture(scope="session")
def day() -> list[Delivery]:
    return service_day(DEMO_RESTAURANTS, DAY, seed=SEED)


@pytest.fixture(scope="session")
def calm_day() -> list[Delivery]:
    """The same day sent without redeliveries or delays."""
    return service_day(DEMO_RESTAURANTS, DAY, seed=SEED, duplicate_rate=0, late_rate=0)


@pytest.fixture(scope="session")
def paypal_pair() -> tuple[str, str]:
    return make_test_certificate()
