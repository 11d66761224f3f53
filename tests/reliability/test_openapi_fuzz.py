"""Bad input, fuzzed from the OpenAPI documents of the ingest and partner APIs (schemathesis).

Every operation of both apps gets generated requests, with and without valid
credentials; no answer may be a 5xx, and every answer must match its documented
schema and content type. The apps run in process with their lifespan (database pools,
group-commit writer) started by schemathesis's ASGI transport.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    response_headers_conformance,
    response_schema_conformance,
)

from api.app import create_app as create_api
from ingest.app import create_app as create_ingest
from partner_signals.db import to_sqlalchemy
from partner_signals.providers import PROVIDERS
from partner_signals.settings import Settings
from tests.api.conftest import Company, make_company
from tests.ingest.conftest import Tenant, make_tenant
from tests.reliability.conftest import record

CHECKS = [not_a_server_error, response_schema_conformance, response_headers_conformance]
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    # No shrinking: a failure is reported as generated, which keeps a failing run short.
    phases=[Phase.explicit, Phase.generate],
)


@pytest.fixture(scope="module")
def fuzz_tenant(engine: sa.Engine, settings: Settings) -> Tenant:
    return make_tenant(engine, settings, "openapi-fuzz")


@pytest.fixture(scope="module")
def built_settings(
    server_url: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """A database of its own with a scripted service day built by dbt, so the partner
    API's signal queries run against real marts and views, not the 503 of "not built"."""
    from tests.pipelines.conftest import run_dbt
    from tests.pipelines.service_day import drop_database, land, new_database, register
    from tests.pipelines.service_day import service_day as scripted_day

    url = new_database(server_url, "ps_fuzz_built")
    try:
        with psycopg.connect(url) as conn:
            register(conn, "fuzz-built-co", "fuzz-built-r")
            day = scripted_day("fuzz-built-co", "fuzz-built-r")
            land(conn, "fuzz-built-co", day.events)
        run_dbt(url, ["run"], tmp_path_factory.mktemp("dbt-fuzz"))
        yield settings.model_copy(update={"database_url": url})
    finally:
        drop_database(server_url, url)


@pytest.fixture(scope="module")
def fuzz_company(built_settings: Settings) -> Iterator[Company]:
    engine = sa.create_engine(to_sqlalchemy(str(built_settings.database_url)))
    try:
        yield make_company(engine, "openapi-fuzz")
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def ingest_schema(settings: Settings) -> Iterator[Any]:
    app = create_ingest(settings)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def api_schema(built_settings: Settings) -> Iterator[Any]:
    # A limit no fuzzing run reaches, so answers are about the request, not 429s.
    app = create_api(
        built_settings.model_copy(update={"api_rate_per_second": 1e6, "api_rate_burst": 10**6})
    )
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    asgi.shutdown_lifespans()


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    # The schema says an NDJSON batch is a string: send it as its UTF-8 bytes; anything
    # else (negative mode) as one JSON line.
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value).encode()


KNOWN_NUL_BUG = False


def has_nul(value: Any) -> bool:
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return "\x00" in str(value)


MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def operations(app: Any) -> list[tuple[str, str, GenerationMode]]:
    """Each operation in each mode, except negative mode for an operation that takes no
    parameters and no body: there is nothing to make invalid (not a skipped test)."""
    found = []
    for path, item in app.openapi()["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            takes_input = bool(op.get("parameters") or op.get("requestBody"))
            for mode in MODES:
                if mode is GenerationMode.POSITIVE or takes_input:
                    found.append((method.upper(), path, mode))
    return found


INGEST_OPS = operations(create_ingest())
PARTNER_OPS = operations(create_api())


def fuzz(
    schema: Any, method: str, path: str, mode: GenerationMode, prepare: Any, label: str = ""
) -> None:
    """Run one operation's generated cases through `prepare` (adds credentials), then
    call it and check the answer."""
    operation = (
        schema[path][method].ok() if hasattr(schema[path][method], "ok") else schema[path][method]
    )
    strategy = operation.as_strategy(generation_mode=mode)
    tally: dict[str, int] = {}

    @FUZZ
    @given(case=strategy)
    def run(case: Any) -> None:
        headers = prepare(case)
        if KNOWN_NUL_BUG and method == "GET" and has_nul(case.query):
            # A NUL in a partner API query parameter is a known 500, pinned by
            # test_nul_in_partner_parameters (xfail); keep fuzzing everything else.
            tally["skipped: NUL in query"] = tally.get("skipped: NUL in query", 0) + 1
            return
        response = case.call(headers=headers)
        answer = str(response.status_code)
        if response.status_code >= 400 and response.content.startswith(b'{"error"'):
            answer += " " + str(response.json()["error"]["code"])
        tally[answer] = tally.get(answer, 0) + 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        run()
    finally:
        if tally:
            record(
                f"openapi_fuzz/{method} {path} {mode.value}{label}",
                requests=sum(tally.values()),
                answers=tally,
            )


@pytest.mark.parametrize(
    ("method", "path", "mode"), INGEST_OPS, ids=lambda v: str(getattr(v, "value", v))
)
def test_ingest_openapi(
    ingest_schema: Any, fuzz_tenant: Tenant, method: str, path: str, mode: GenerationMode
) -> None:
    def prepare(case: Any) -> dict[str, str]:
        headers = {}
        if case.path == "/events":
            headers["Authorization"] = f"Bearer {fuzz_tenant.ingest_key}"
            if isinstance(case.body, dict) and len(case.body) % 2 == 0:
                # Half the events name the company's own restaurant, to get past that check.
                case.body["restaurant_id"] = fuzz_tenant.restaurant_id
        elif case.path_parameters and "company_id" in case.path_parameters:
            # Most cases aim at a real provider of a real company, so verify() runs too.
            company = str(case.path_parameters["company_id"])
            if len(company) % 4:
                case.path_parameters["company_id"] = fuzz_tenant.company_id
                case.path_parameters["provider"] = sorted(PROVIDERS)[len(company) % len(PROVIDERS)]
        return headers

    fuzz(ingest_schema, method, path, mode, prepare)


@pytest.mark.parametrize("keyed", [True, False], ids=["with-key", "without-key"])
@pytest.mark.parametrize(
    ("method", "path", "mode"), PARTNER_OPS, ids=lambda v: str(getattr(v, "value", v))
)
def test_partner_openapi(
    api_schema: Any,
    fuzz_company: Company,
    method: str,
    path: str,
    mode: GenerationMode,
    keyed: bool,
) -> None:
    def prepare(case: Any) -> dict[str, str]:
        if not keyed:
            return {}
        params = case.path_parameters or {}
        # Some cases read an own restaurant, so the signal queries run too.
        if "restaurant_id" in params and len(str(params["restaurant_id"])) % 2 == 0:
            params["restaurant_id"] = fuzz_company.restaurants[0]
        return {"Authorization": f"Bearer {fuzz_company.full_key}"}

    fuzz(api_schema, method, path, mode, prepare, "" if keyed else " without key")


def test_openapi_documents_every_answer() -> None:
    """What schemathesis's status_code_conformance and content_type_conformance would flag."""
    missing = []
    api = create_api().openapi()
    for path, item in api["paths"].items():
        for method, op in item.items():
            if path.startswith("/v1/") and "schema" not in path:
                for code in ("401", "403", "429", "503"):
                    if code not in op["responses"]:
                        missing.append(f"partner {method.upper()} {path}: {code}")
    if not api.get("components", {}).get("securitySchemes"):
        missing.append("partner: no securitySchemes (bearer key)")
    metrics = create_ingest().openapi()["paths"]["/metrics"]["get"]["responses"]["200"]
    if "text/plain" not in metrics.get("content", {}):
        missing.append("ingest GET /metrics: text/plain not documented")
    assert not missing, missing
