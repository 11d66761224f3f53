"""Security: tenant isolation across the partner API, secrets nowhere in plain text,
constant-time comparisons, per-source rate limits."""

from __future__ import annotations

import ast
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app as create_api
from ingest.app import create_app as create_ingest
from partner_signals.settings import Settings, get_settings
from tests.api.conftest import Company, bearer, make_company
from tests.ingest.conftest import make_tenant
from tests.reliability.conftest import make_events, record, sign

ROOT = Path(__file__).resolve().parents[2]


# ---- tenant isolation across the partner API


# Each signal's key last: a page is ordered by the signal's order, then its key.
STAND_INS = """
create table canonical.canonical_events (
    id uuid primary key default gen_random_uuid(), type text, schema_version int,
    occurred_at timestamptz, received_at timestamptz, source text, company_id text,
    restaurant_id text, order_id text, data jsonb, loaded_at timestamptz);
create table marts.current_order_velocity (restaurant_id text, orders_5m int, note text);
create table marts.fct_order_velocity (
    restaurant_id text, interval_start timestamptz, business_date date, orders int, note text);
create table marts.fct_item_prep_times (
    restaurant_id text, business_date date, item_id text, p50_seconds int, note text);
create table marts.fct_table_occupancy (
    restaurant_id text, seated_at timestamptz, cleared_at timestamptz, business_date date,
    note text, visit_id text);
create table marts.fct_time_to_pay (
    restaurant_id text, status text, bill_requested_at timestamptz, business_date date,
    note text, order_id text);
create table marts.fct_order_pacing (
    restaurant_id text, seated_at timestamptz, business_date date, note text, visit_id text);
create table marts.current_occupied_tables (restaurant_id text, seated_at timestamptz, note text);
create table marts.current_active_orders (restaurant_id text, opened_at timestamptz, note text);
create table marts.current_open_bills (
    restaurant_id text, bill_requested_at timestamptz, note text);
"""


def fill_stand_ins(conn: psycopg.Connection[Any], company: Company) -> None:
    for r in company.restaurants:
        note = f"{company.company_id}:{r}"
        conn.execute(
            "insert into canonical.canonical_events (type, schema_version, occurred_at, "
            "received_at, source, company_id, restaurant_id, order_id, data, loaded_at) values "
            "('order.created', 1, now() - interval '1 hour', now() - interval '1 hour', 'pos', "
            "%s, %s, 'o-1', jsonb_build_object('note', %s::text), now())",
            (company.company_id, r, note),
        )
        for sql in (
            "insert into marts.current_order_velocity values (%(r)s, 3, %(n)s)",
            "insert into marts.fct_order_velocity values "
            "(%(r)s, now() - interval '1 hour', current_date, 3, %(n)s)",
            "insert into marts.fct_item_prep_times values (%(r)s, current_date, 'burger', 600, %(n)s)",
            "insert into marts.fct_table_occupancy values "
            "(%(r)s, now() - interval '1 hour', null, current_date, %(n)s)",
            "insert into marts.fct_time_to_pay values "
            "(%(r)s, 'open', now() - interval '1 hour', current_date, %(n)s)",
            "insert into marts.fct_order_pacing values "
            "(%(r)s, now() - interval '1 hour', current_date, %(n)s)",
            "insert into marts.current_occupied_tables values (%(r)s, now(), %(n)s)",
            "insert into marts.current_active_orders values (%(r)s, now(), %(n)s)",
            "insert into marts.current_open_bills values (%(r)s, now(), %(n)s)",
        ):
            conn.execute(sql, {"r": r, "n": note})


@pytest.fixture
def materialized(
    server_url: str, settings: Settings, ids: str
) -> Iterator[tuple[Settings, Company, Company]]:
    """A database of its own with stand-ins for the dbt-built relations the partner API
    reads, holding rows of two companies, so "A cannot read B" is tested against data."""
    from partner_signals.db import to_sqlalchemy, with_database
    from partner_signals.db.migrate import upgrade

    name = f"ps_iso_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = with_database(server_url, name)
    engine = sa.create_engine(to_sqlalchemy(url))
    try:
        upgrade(engine)
        a, b = make_company(engine, f"iso-a{ids}"), make_company(engine, f"iso-b{ids}")
        engine.dispose()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(STAND_INS)
            fill_stand_ins(conn, a)
            fill_stand_ins(conn, b)
        exports = Path(settings.data_dir) / f"exports-{name}"
        for company in (a, b):
            day = exports / company.restaurants[0] / "2026-11-23"
            day.mkdir(parents=True, exist_ok=True)
            (day / "order_velocity.csv").write_text(
                f"restaurant_id,orders\n{company.restaurants[0]},7\n"
            )
        yield (
            settings.model_copy(
                update={
                    "database_url": url,
                    "exports_dir": exports,
                    "api_rate_per_second": 1e6,
                    "api_rate_burst": 10**6,
                }
            ),
            a,
            b,
        )
    finally:
        engine.dispose()
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def probes_for(route: str, params: list[dict[str, Any]], b: Company) -> Iterator[str]:
    """URLs for one route with B's identifiers in every path and query parameter."""
    b_export = f"{b.restaurants[0]}/2026-11-23/order_velocity.csv"
    values = [*b.restaurants, b.company_id]
    path_params = [p["name"] for p in params if p["in"] == "path"]
    query_params = [p["name"] for p in params if p["in"] == "query"]
    for value in [*values, b_export]:
        path = route
        for name in path_params:
            path = path.replace("{" + name + "}", value if name != "name" else b_export)
        yield path
        for q in query_params:
            yield f"{path}?{q}={value}"
        if query_params:
            yield path + "?" + "&".join(f"{q}={value}" for q in query_params)


def test_partner_key_of_a_cannot_read_b_anywhere(
    materialized: tuple[Settings, Company, Company],
) -> None:
    api_settings, a, b = materialized
    secrets_of_b = [b.company_id, *b.restaurants]
    app = create_api(api_settings)
    spec = app.openapi()
    seen = 0
    leaks = []
    answers: dict[str, int] = {}
    with TestClient(app) as client:
        for route, item in spec["paths"].items():
            for method, op in item.items():
                if method != "get":
                    continue
                for url in probes_for(route, op.get("parameters", []), b):
                    for key in (a.full_key, a.one_restaurant_key, a.events_only_key):
                        response = client.get(url, headers=bearer(key))
                        seen += 1
                        code = str(response.status_code)
                        answers[code] = answers.get(code, 0) + 1
                        if response.status_code == 200 and any(
                            s in response.text for s in secrets_of_b
                        ):
                            leaks.append((url, response.text[:200]))
        # B's own key does read all of it: the probes above had something to find.
        own = [
            client.get(url, headers=bearer(b.full_key))
            for url in (
                f"/v1/exports/{b.restaurants[0]}/2026-11-23/order_velocity.csv",
                f"/v1/restaurants/{b.restaurants[0]}/workforce",
                f"/v1/restaurants/{b.restaurants[0]}/crm",
                "/v1/events",
            )
        ]
    record("tenant_isolation/partner_api", requests=seen, answers=answers, leaks=len(leaks))
    for response in own:
        assert response.status_code == 200, response.text
        assert b.restaurants[0] in response.text
    # A 200 is fine only when it shows nothing of B (schemas, health, A's own lists).
    assert not leaks, leaks


def test_nul_in_partner_parameters(settings: Settings, engine: sa.Engine, ids: str) -> None:
    a = make_company(engine, f"nul-{ids}")
    with TestClient(create_api(settings), raise_server_exceptions=False) as client:
        codes = {
            url: client.get(url, headers=bearer(a.full_key)).status_code
            for url in (
                "/v1/restaurants/ab%00cd/workforce",
                "/v1/restaurants/ab%00cd/crm",
                "/v1/events?restaurant_id=a%00b",
            )
        }
    assert all(400 <= c < 500 for c in codes.values()), codes


# ---- secrets never in plain text


def scan_database(conninfo: str, needles: list[str]) -> list[str]:
    """Every text, json, jsonb, varchar or bytea column of every user table that holds a needle."""
    hits = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        columns = conn.execute(
            "select table_schema, table_name, column_name, data_type "
            "from information_schema.columns c join information_schema.tables t "
            "using (table_schema, table_name) "
            "where t.table_type = 'BASE TABLE' "
            "and table_schema not in ('pg_catalog', 'information_schema') "
            "and data_type in ('text', 'json', 'jsonb', 'character varying', 'bytea', 'ARRAY')"
        ).fetchall()
        for schema, table, column, kind in columns:
            target = f"{schema}.{table}.{column}"
            ref = f'"{column}"'
            for needle in needles:
                if kind == "bytea":
                    where = f"position(convert_to(%s, 'UTF8') in {ref}) > 0"
                else:
                    where = f"strpos({ref}::text, %s) > 0"
                found = conn.execute(
                    f'select count(*) from "{schema}"."{table}" where {where}', (needle,)
                ).fetchone()
                if found and found[0]:
                    hits.append(f"{target} holds {needle[:6]}…")
    return hits


def test_secrets_never_in_logs_bodies_metrics_or_columns(
    engine: sa.Engine,
    settings: Settings,
    ids: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cli.main import app as cli  # imported here: it mounts every package's commands

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("PARTNER_SIGNALS_SECRET_KEY", str(settings.secret_key))
    monkeypatch.setenv("PARTNER_SIGNALS_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    runner = CliRunner()
    company, restaurant = f"sec-{ids}", f"sec-r-{ids}"
    webhook_secret = f"whsec_plain_{ids}_do_not_leak"
    adapter_secret = "whsec_" + "QWRhcHRlclNlY3JldEZvclRlc3RzMTIzNDU2Nzg5MA=="
    texts: list[str] = []

    def run(*args: str, input: str | None = None, prints_key: bool = False) -> str:
        result = runner.invoke(cli, list(args), input=input)
        assert result.exit_code == 0, result.output
        if not prints_key:
            texts.append(result.output)
        return result.output

    try:
        run("restaurants", "add", "--company", company, "--restaurant", restaurant,
            "--timezone", "Asia/Dubai")  # fmt: skip
        run("integrations", "enable", "careem", "--company", company, "--webhook-secret",
            webhook_secret)  # fmt: skip
        run("integrations", "enable", "stripe", "--company", company, "--webhook-secret", "-",
            input=webhook_secret + "\n")  # fmt: skip
        run("integrations", "enable", "webhook", "--company", company, "--url",
            "https://partner.example/hook", "--secret", adapter_secret)  # fmt: skip
        ingest_key = run("ingest-keys", "create", "--company", company, prints_key=True)
        ingest_key = ingest_key.strip().splitlines()[-1]
        partner_key = run("keys", "create", "--company", company, "--scope", "read:events",
                          "--scope", "read:workforce", prints_key=True)  # fmt: skip
        partner_key = partner_key.strip().splitlines()[-1]
        assert ingest_key.startswith("psi_") and partner_key.startswith("psk")
    finally:
        get_settings.cache_clear()

    tenant = make_tenant(engine, settings, f"secx{ids}")  # a neighbour, for cross traffic
    needles = [webhook_secret, adapter_secret, ingest_key, partner_key, str(settings.secret_key)]

    class T:  # the CLI-made company, shaped like a Tenant for the signing helper
        company_id = company
        restaurant_id = restaurant
        secret = webhook_secret
        paypal_webhook_id = ""

    with TestClient(create_ingest(settings)) as ingest:
        for event in make_events(T, 6, ["careem", "stripe"]):  # type: ignore[arg-type]
            headers = sign(event, T)  # type: ignore[arg-type]
            path = f"/webhooks/{event.source}/{company}"
            texts.append(ingest.post(path, content=event.body, headers=headers).text)
            # the same body signed with the wrong secret, and sent to the neighbour
            bad = dict(headers)
            for k in bad:
                if k.lower() in ("x-careem-signature", "stripe-signature"):
                    bad[k] = bad[k][:-4] + "0000"
            for target in (path, f"/webhooks/{event.source}/{tenant.company_id}"):
                r = ingest.post(target, content=event.body, headers=bad)
                texts.append(r.text + str(dict(r.headers)))
        pos = {
            "event_id": f"p-{ids}",
            "type": "order.created",
            "occurred_at": "2026-11-23T19:04:05+04:00",
            "restaurant_id": restaurant,
            "order_id": "o-1",
            "data": {},
        }
        for key in (ingest_key, ingest_key[:-2], tenant.ingest_key):
            r = ingest.post(
                "/events",
                content=orjson.dumps(pos),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            texts.append(r.text + str(dict(r.headers)))
        texts.append(ingest.get("/metrics").text)

    with TestClient(create_api(settings)) as api:
        for key in (partner_key, partner_key[:-3], tenant.ingest_key):
            for url in ("/v1/events", f"/v1/restaurants/{restaurant}/workforce", "/v1/exports"):
                r = api.get(url, headers=bearer(key))
                texts.append(r.text + str(dict(r.headers)))
        texts.append(api.get("/metrics").text)

    texts.append(caplog.text)
    in_text = [f"{n[:6]}… in output #{i}" for i, t in enumerate(texts) for n in needles if n in t]
    in_db = scan_database(str(settings.database_url), needles)
    record(
        "secrets_grep",
        secrets=len(needles),
        outputs_scanned=len(texts),
        log_records=len(caplog.records),
        hits_in_outputs=len(in_text),
        hits_in_columns=len(in_db),
    )
    assert not in_text, in_text
    assert not in_db, in_db


# ---- constant-time comparisons


SECRETISH = re.compile(r"(secret|signature|^sig$|_sig$|token|digest|hmac|key_hash|password)", re.I)


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _name(node.func)
    if isinstance(node, ast.Subscript):
        return _name(node.value)
    return ""


def test_secrets_compared_in_constant_time() -> None:
    """No `==`/`!=` between a secret-looking value and anything but None or a literal:
    secrets are compared with hmac.compare_digest (or looked up by their SHA-256)."""
    offenders = []
    files = [
        p
        for d in ("partner_signals", "ingest", "api", "pipelines")
        for p in (ROOT / d).rglob("*.py")
        if "migrations" not in p.parts
    ]
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                continue
            sides = [node.left, *node.comparators]
            if any(isinstance(s, ast.Constant) for s in sides):
                continue
            if any(SECRETISH.search(_name(s)) for s in sides):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    record("constant_time_scan", files=len(files), offenders=offenders)
    assert not offenders, offenders


# ---- per-source rate limits


def test_rate_limit_is_per_company_and_source(
    engine: sa.Engine, settings: Settings, ids: str
) -> None:
    a = make_tenant(engine, settings, f"rl-a{ids}")
    b = make_tenant(engine, settings, f"rl-b{ids}")
    limited = settings.model_copy(update={"ingest_rate_per_second": 0.5, "ingest_rate_burst": 5})
    codes: dict[str, list[int]] = {}
    retry_after: str | None = None
    with TestClient(create_ingest(limited)) as client:
        for label, tenant, source, count in (
            ("a_careem_flood", a, "careem", 20),
            ("a_stripe", a, "stripe", 3),
            ("b_careem", b, "careem", 3),
            ("a_pos", a, "pos", 3),
        ):
            answers = []
            for event in make_events(tenant, count, [source]):
                path, body, headers = event.request(tenant)
                response = client.post(path, content=body, headers=headers)
                answers.append(response.status_code)
                if response.status_code == 429:
                    retry_after = response.headers.get("retry-after")
            codes[label] = answers
    record(
        "rate_limit_per_source",
        limit="0.5/s, burst 5, per (company, source)",
        **{k: {str(c): v.count(c) for c in set(v)} for k, v in codes.items()},
    )
    assert codes["a_careem_flood"][:5] == [200] * 5
    assert set(codes["a_careem_flood"][5:]) == {429}
    assert codes["a_stripe"] == codes["b_careem"] == codes["a_pos"] == [200] * 3
    assert retry_after is not None and int(retry_after) >= 1
