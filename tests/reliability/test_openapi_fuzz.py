"""Bad input, fuzzed from the OpenAPI documents of the ingest and partner APIs (schemathesis).

schemathesis's own pytest integration: `@schema.parametrize()` makes one test per
operation of each app, each with valid (positive) and invalid (negative) generated
requests; the partner API's OpenAPI links (events -> next page, exports -> a listed
file) drive a stateful test (`schema.as_state_machine()`). No answer may be a 5xx, and
every answer must match its documented schema and headers. The apps run in process
with their lifespan (database pools, group-commit writer, cache listeners), on the test
database; the partner API's on one with a service day built by dbt and exported, so its
signal, event and file reads return real rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    response_headers_conformance,
    response_schema_conformance,
)

from api.app import create_app as create_api
from api.keys import create_partner_key
from ingest.app import create_app as create_ingest
from partner_signals.db import to_sqlalchemy
from partner_signals.exports import export_days, list_exports, touched_business_days
from partner_signals.providers import PROVIDERS
from partner_signals.settings import Settings
from tests.ingest.conftest import Tenant, make_tenant
from tests.reliability.conftest import record

CHECKS = [not_a_server_error, response_schema_conformance, response_headers_conformance]
# Per operation, positive and negative cases together; the stateful test's scenarios.
EXAMPLES = 30
SCENARIOS = 15
FUZZ = settings(
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
    # No shrinking: a failure is reported as generated, which keeps a failing run short.
    phases=[Phase.explicit, Phase.generate],
)
BUILT_COMPANY, BUILT_RESTAURANT = "fuzz-built-co", "fuzz-built-r"


def configured(schema: Any) -> Any:
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=EXAMPLES,
        deterministic=True,
        no_shrink=True,
    )
    return schema


# The documents, read from the apps without starting them; each case is sent to an app
# a fixture starts on the test database (`case.call(app=...)`): the test database
# exists only once fixtures run. (schemathesis.pytest.from_fixture would do this, but
# fails under pytest 9: it sets `request.node._nodeid`, which pytest 9 no longer has.)
ingest = configured(schemathesis.openapi.from_dict(create_ingest().openapi()))
partner = configured(schemathesis.openapi.from_dict(create_api().openapi()))


class Tally:
    """What each operation answered, per mode, recorded in the reliability figures."""

    def __init__(self) -> None:
        self.answers: dict[str, dict[str, int]] = {}

    def note(self, case: Any, response: Any, suffix: str = "") -> None:
        label = f"{case.operation.label} {case.meta.generation.mode.value}{suffix}"
        answer = str(response.status_code)
        if response.status_code >= 400 and response.content.startswith(b'{"error"'):
            answer += " " + str(response.json()["error"]["code"])
        counts = self.answers.setdefault(label, {})
        counts[answer] = counts.get(answer, 0) + 1

    def record(self, prefix: str) -> None:
        for label, counts in sorted(self.answers.items()):
            record(f"{prefix}/{label}", requests=sum(counts.values()), answers=counts)


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    # The schema says an NDJSON batch is a string: send it as its UTF-8 bytes; anything
    # else (negative mode) as one JSON line.
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value).encode()


# ---- ingest


@pytest.fixture(scope="module")
def fuzz_tenant(engine: sa.Engine, settings: Settings) -> Tenant:
    return make_tenant(engine, settings, "openapi-fuzz")


@pytest.fixture(scope="module")
def ingest_app(settings: Settings) -> Iterator[Any]:
    yield create_ingest(settings)
    asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def ingest_tally() -> Iterator[Tally]:
    tally = Tally()
    yield tally
    tally.record("openapi_fuzz/ingest")


@ingest.parametrize()
@FUZZ
def test_ingest_openapi(
    case: Any, ingest_app: Any, fuzz_tenant: Tenant, ingest_tally: Tally
) -> None:
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
    response = case.call(app=ingest_app, headers=headers)
    ingest_tally.note(case, response)
    case.validate_response(response, checks=CHECKS, headers=headers)


# ---- partner API


@pytest.fixture(scope="module")
def built_settings(
    server_url: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """A database of its own with a scripted service day built by dbt and exported, so
    the partner API's queries and file reads run against real marts, views and files,
    not the 503 of "not built" or an empty list."""
    from tests.pipelines.conftest import run_dbt
    from tests.pipelines.service_day import drop_database, land, new_database, register
    from tests.pipelines.service_day import service_day as scripted_day

    url = new_database(server_url, "ps_fuzz_built")
    exports_dir = tmp_path_factory.mktemp("fuzz-exports")
    engine = sa.create_engine(to_sqlalchemy(url))
    try:
        with psycopg.connect(url) as conn:
            register(conn, BUILT_COMPANY, BUILT_RESTAURANT)
            land(conn, BUILT_COMPANY, scripted_day(BUILT_COMPANY, BUILT_RESTAURANT).events)
        run_dbt(url, ["run"], tmp_path_factory.mktemp("dbt-fuzz"))
        with engine.connect() as conn:
            days = touched_business_days(conn, since=None, until=datetime.now(UTC))
        export_days(engine, exports_dir, days)
        assert list(list_exports(exports_dir)), "the service day exported no file"
        yield settings.model_copy(
            update={
                "database_url": url,
                "exports_dir": exports_dir,
                # A limit no fuzzing run reaches: answers are about the request, not 429s.
                "api_rate_per_second": 1e6,
                "api_rate_burst": 10**6,
            }
        )
    finally:
        engine.dispose()
        drop_database(server_url, url)


@pytest.fixture(scope="module")
def partner_key(built_settings: Settings) -> str:
    """A key of the company whose service day was built: every scope, whole company."""
    engine = sa.create_engine(to_sqlalchemy(str(built_settings.database_url)))
    try:
        with engine.begin() as conn:
            return create_partner_key(
                conn,
                company_id=BUILT_COMPANY,
                scopes=["read:workforce", "read:crm", "read:events", "read:exports"],
            )
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def partner_app(built_settings: Settings) -> Iterator[Any]:
    yield create_api(built_settings)
    asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def partner_tally() -> Iterator[Tally]:
    tally = Tally()
    yield tally
    tally.record("openapi_fuzz/partner")


@partner.parametrize()
@FUZZ
def test_partner_openapi(
    case: Any, partner_app: Any, partner_key: str, partner_tally: Tally
) -> None:
    """Each case is sent without a key (401 before anything else runs), then with one."""
    anonymous = case.call(app=partner_app)
    partner_tally.note(case, anonymous, " without key")
    case.validate_response(anonymous, checks=CHECKS)
    params = case.path_parameters or {}
    # Some cases read the built restaurant, so the signal queries return rows too.
    if "restaurant_id" in params and len(str(params["restaurant_id"])) % 2 == 0:
        params["restaurant_id"] = BUILT_RESTAURANT
    headers = {"Authorization": f"Bearer {partner_key}"}
    response = case.call(app=partner_app, headers=headers)
    partner_tally.note(case, response)
    case.validate_response(response, checks=CHECKS, headers=headers)


def test_partner_links_stateful(partner_app: Any, partner_key: str) -> None:
    """Scenarios that follow the partner API's links with a key, from the list of
    exports: a listed file, its restaurant's signals and events, the events' next page.
    Every declared link must be followed at least once, so none can silently stop
    resolving (the run is deterministic: derandomized)."""
    followed: dict[str, int] = {}
    answers: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {partner_key}"}

    class Keyed(partner.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"app": partner_app, "headers": headers}

        def step(self, input: Any) -> Any:
            if input.transition is not None and input.is_applied:
                followed[input.transition.id] = followed.get(input.transition.id, 0) + 1
            return super().step(input)

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            key = f"{case.operation.label} {response.status_code}"
            answers[key] = answers.get(key, 0) + 1
            case.validate_response(response, checks=CHECKS, headers=headers)

    Keyed.run(
        settings=settings(
            FUZZ, max_examples=SCENARIOS, stateful_step_count=6, phases=[Phase.generate]
        )
    )
    record(
        "openapi_fuzz/partner stateful",
        requests=sum(answers.values()),
        links_followed=followed,
        answers=answers,
    )
    declared = {
        name
        for item in create_api().openapi()["paths"].values()
        for op in item.values()
        for response in op.get("responses", {}).values()
        for name in response.get("links", {})
    }
    names = {transition.split("] ")[1].split(" ->")[0] for transition in followed}
    assert declared and names == declared, f"links followed: {followed}; answers: {answers}"


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
