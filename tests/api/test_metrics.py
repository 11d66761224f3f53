"""Partner API request metrics: per route template (never an id), status, latency."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from api.metrics import RequestMetrics
from partner_signals.processes import child_env, free_port, start, stop, uvicorn_cmd, wait_ready
from partner_signals.settings import Settings
from tests.api.conftest import Company, bearer

WORKFORCE = "/v1/restaurants/{restaurant_id}/workforce"


def requests_total(route: str, status: str, method: str = "GET") -> float:
    labels = {"method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("partner_signals_api_requests_total", labels) or 0.0


def latency_count(route: str, method: str = "GET") -> float:
    labels = {"method": method, "route": route}
    return REGISTRY.get_sample_value("partner_signals_api_request_seconds_count", labels) or 0.0


def test_requests_are_counted_per_route_template_and_status(
    api: TestClient, company: Company, other: Company
) -> None:
    before_401 = requests_total(WORKFORCE, "401")
    before_403 = requests_total(WORKFORCE, "403")
    before_unmatched = requests_total("unmatched", "404")
    before_latency = latency_count(WORKFORCE)

    for restaurant in company.restaurants:
        assert api.get(f"/v1/restaurants/{restaurant}/workforce").status_code == 401
    forbidden = api.get(
        f"/v1/restaurants/{other.restaurants[0]}/workforce", headers=bearer(company.full_key)
    )
    assert forbidden.status_code == 403
    assert api.get(f"/v1/no-such-path/{company.company_id}").status_code == 404

    assert requests_total(WORKFORCE, "401") == before_401 + 2
    assert requests_total(WORKFORCE, "403") == before_403 + 1
    assert requests_total("unmatched", "404") == before_unmatched + 1
    assert latency_count(WORKFORCE) == before_latency + 3

    text = api.get("/metrics").text
    assert f'route="{WORKFORCE}"' in text
    assert 'route="unmatched"' in text
    # Labels are templates: no restaurant, company or key ever appears in the metrics.
    for value in (*company.restaurants, *other.restaurants, company.company_id, company.full_key):
        assert value not in text


def test_every_worker_is_counted_under_prometheus_multiproc_dir(
    settings: Settings, tmp_path: Path
) -> None:
    """uvicorn --workers 2: each /metrics answer sums both workers' requests."""
    port = free_port()
    env = child_env(settings, {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    proc = start(uvicorn_cmd("api.app:app", host="127.0.0.1", port=port, workers=2), env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/readyz", proc, timeout=60, streak=8)
        before = healthz_count(httpx.get(f"{base}/metrics").text)
        for _ in range(40):  # a new connection each: the kernel spreads them over workers
            assert httpx.get(f"{base}/healthz").status_code == 200
        for _ in range(4):  # whichever worker answers, the count is the same
            assert healthz_count(httpx.get(f"{base}/metrics").text) == before + 40
    finally:
        stop(proc)


def healthz_count(text: str) -> float:
    found = re.search(
        r'^partner_signals_api_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)$',
        text,
        re.MULTILINE,
    )
    return float(found[1]) if found else 0.0


def test_an_unhandled_error_is_counted_as_a_500_of_its_route() -> None:
    """The 5xx alert counts on it: an exception no handler caught still lands in the
    metrics, under the route it matched."""
    app = FastAPI()
    app.add_middleware(RequestMetrics)

    @app.get("/v1/boom/{thing_id}")
    async def boom(thing_id: str) -> None:
        raise RuntimeError("not a partner's fault")

    before = requests_total("/v1/boom/{thing_id}", "500")
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/v1/boom/t-1").status_code == 500
    assert requests_total("/v1/boom/{thing_id}", "500") == before + 1
