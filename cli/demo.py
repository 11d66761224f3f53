"""`make demo`: synthetic service days sent through the real HTTP ingest path, then the signals,
what is live now, a partner key and its API call, and pushes a local partner verified."""

from __future__ import annotations

import asyncio
import base64
import secrets
import shlex
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from cli.local_partner import LocalPartner
from partner_signals.catalogue import signals as catalogue
from partner_signals.catalogue import sources
from partner_signals.db import get_engine
from partner_signals.db.migrate import upgrade
from partner_signals.processes import child_env, free_port, start, stop, uvicorn_cmd, wait_ready
from partner_signals.providers.paypal import make_test_certificate
from partner_signals.registry import (
    add_restaurant,
    create_ingest_key,
    enable_adapter,
    enable_integration,
)
from partner_signals.settings import Settings, get_settings
from synthetic import (
    CURRENCY_DECIMALS,
    WORLD,
    Delivery,
    RestaurantSpec,
    in_service,
    service_days_until,
    signed_headers,
)

console = Console(width=None if sys.stdout.isatty() else 110)
CONCURRENCY = 32
# `partner-signals serve`'s partner API port (cli/main.py), for the printed curl.
SERVE_API_PORT = 8001
SERVE_ADMIN_PORT = 8003
# What the demo's local partner subscribes to: "time-to-pay started" and the time-to-pay
# values, a CRM partner's pair, for one restaurant: a few hundred pushes, not thousands.
DEMO_PUSH_EVENTS = ("order.bill_requested",)
DEMO_PUSH_SIGNALS = ("time_to_pay",)


def pick_restaurants(
    world: Sequence[RestaurantSpec], count: int | None, now: datetime
) -> list[RestaurantSpec]:
    """`count` restaurants of the world (all when None), those in the middle of a
    service at `now` first, so even `--restaurants 1` shows a live one."""
    ranked = sorted(world, key=lambda spec: in_service(spec, now) is None)
    if count is None:
        return list(world)
    chosen = {spec.restaurant_id for spec in ranked[: max(1, count)]}
    return [spec for spec in world if spec.restaurant_id in chosen]


def local_clock(spec: RestaurantSpec, now: datetime) -> str:
    """The restaurant's wall clock at `now` and where it is in its day."""
    local = now.astimezone(ZoneInfo(spec.timezone))
    service = in_service(spec, now)
    if service is None:
        return f"{local:%H:%M}, not in service"
    return f"{local:%H:%M}, in service until {service[1]:%H:%M}"


def register(
    settings: Settings, restaurants: list[RestaurantSpec]
) -> tuple[dict[str, str], dict[str, str], str]:
    """Register the demo tenants with fresh secrets: (webhook secret per company,
    ingest key per company, PayPal private key)."""
    cert, private_key = make_test_certificate("partner-signals demo")
    webhook_secrets: dict[str, str] = {}
    keys: dict[str, str] = {}
    with get_engine(settings).begin() as conn:
        for spec in restaurants:
            add_restaurant(
                conn,
                company_id=spec.company_id,
                restaurant_id=spec.restaurant_id,
                timezone=spec.timezone,
                name=spec.name,
            )
        for company in sorted({s.company_id for s in restaurants}):
            secret = "whsec_" + secrets.token_urlsafe(24)
            webhook_secrets[company] = secret
            # Every webhook source signed with a shared secret (PayPal signs with a key).
            for provider in (n for n in sources.inbound_names() if n != "paypal"):
                enable_integration(
                    conn,
                    key=settings.master_key(),
                    company_id=company,
                    provider=provider,
                    secrets={"webhook_secrets": [secret]},
                )
            enable_integration(
                conn,
                key=settings.master_key(),
                company_id=company,
                provider="paypal",
                config={"webhook_id": f"WH-DEMO-{company}", "certificates": [cert]},
            )
            keys[company] = create_ingest_key(conn, company_id=company)
    return webhook_secrets, keys, private_key


def requests_for(deliveries: list[Delivery], batch: int = 50) -> list[list[Delivery]]:
    """Group the senders' requests: webhooks one per request, as providers send them;
    POS events in NDJSON batches of consecutive events per company, as a POS flushes
    its queue. Send order is kept."""
    out: list[list[Delivery]] = []
    open_batches: dict[str, list[Delivery]] = {}
    for d in deliveries:
        if d.source != "pos":
            out.append([d])
            continue
        current = open_batches.get(d.company_id)
        if current is None or len(current) >= batch:
            current = open_batches[d.company_id] = []
            out.append(current)
        current.append(d)
    return out


async def send_all(
    base_url: str,
    deliveries: list[Delivery],
    webhook_secrets: dict[str, str],
    keys: dict[str, str],
    paypal_key: str,
) -> Counter[str]:
    """Send in the senders' order, CONCURRENCY at a time, retrying 503s as a sender would."""
    outcomes: Counter[str] = Counter()
    queue: asyncio.Queue[list[Delivery]] = asyncio.Queue()
    for group in requests_for(deliveries):
        queue.put_nowait(group)

    def request(group: list[Delivery]) -> tuple[str, bytes, dict[str, str]]:
        first = group[0]
        if first.source == "pos":
            headers = {
                "Authorization": f"Bearer {keys[first.company_id]}",
                "Content-Type": "application/x-ndjson",
            }
            return "/events", b"\n".join(d.body for d in group), headers
        secret = paypal_key if first.source == "paypal" else webhook_secrets[first.company_id]
        headers = signed_headers(
            first, secret, now=time.time(), paypal_webhook_id=f"WH-DEMO-{first.company_id}"
        )
        return f"/webhooks/{first.source}/{first.company_id}", first.body, headers

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            group = queue.get_nowait()
            for attempt in range(5):
                url, body, headers = request(group)
                response = await client.post(url, content=body, headers=headers)
                if response.status_code != 503:
                    break
                await asyncio.sleep(0.2 * (attempt + 1))
            if response.status_code != 200:
                outcomes[f"http {response.status_code}"] += len(group)
            elif group[0].source == "pos":
                answer = response.json()
                outcomes["accepted"] += answer["accepted"]
                outcomes["duplicate"] += answer["duplicates"]
            else:
                outcomes[response.json()["status"]] += 1

    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return outcomes


def restaurant_sql() -> str:
    """The restaurant of a raw webhook row, where each source's catalogue entry says it is.
    PayPal's custom_id carries "restaurant:order"; an id never holds ':', so the part
    before one is the restaurant for every source."""
    cases = " ".join(
        f"when '{s.name}' then body::jsonb #>> '{{{','.join(s.restaurant.json)}}}'"
        for s in sources.sources()
        if s.is_webhook and s.restaurant.json
    )
    return f"split_part(case source {cases} end, ':', 1)"


def landed_table(engine: sa.Engine, companies: list[str]) -> Table:
    table = Table(title="What landed in raw.*")
    for col in ("restaurant", "source", "events"):
        table.add_column(col, justify="right" if col == "events" else "left")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                f"""
                select restaurant_id, 'pos' as source, count(*) from raw.order_events
                where company_id = any(:c) group by 1, 2
                union all
                select {restaurant_sql()}, source, count(*)
                from raw.webhook_events where company_id = any(:c) group by 1, 2
                order by 1, 2
                """
            ),
            {"c": companies},
        ).all()
    for restaurant, source, count in rows:
        table.add_row(str(restaurant), str(source), f"{count:,}")
    return table


def signals_sql() -> str:
    """Each signal's headline figures per restaurant (the catalogue's `headline`), one CTE
    per signal, joined on the company's restaurants."""
    ctes, figures, joins = [], [], []
    for i, signal in enumerate(s for s in catalogue.signals() if s.headline):
        columns = ", ".join(f"{h.sql} as f{i}_{j}" for j, h in enumerate(signal.headline))
        ctes.append(f"s{i} as (select restaurant_id, {columns} from {signal.relation} group by 1)")
        figures += [f"s{i}.f{i}_{j}" for j in range(len(signal.headline))]
        joins.append(f"left join s{i} using (restaurant_id)")
    return (
        f"with {', '.join(ctes)} "
        f"select r.restaurant_id, {', '.join(figures)} from ops.restaurants r "
        f"{' '.join(joins)} where r.company_id = any(:c) order by r.restaurant_id"
    )


def _minutes(seconds: object) -> str:
    return "" if seconds is None else f"{float(seconds) / 60:.1f} min"  # type: ignore[arg-type]


def show_money(value: object, currencies: Sequence[str]) -> str:
    """An amount with its currency, in that currency's decimals ("1,234.50 AED",
    "12.345 KWD"). A figure over several currencies is no amount at all: it says so."""
    if len(currencies) > 1:
        return "mixed " + "+".join(currencies)
    amount = Decimal(str(value or 0))
    if not currencies:
        return "" if not amount else f"{amount:,.2f} (no currency)"
    currency = currencies[0]
    return f"{amount:,.{CURRENCY_DECIMALS.get(currency, 2)}f} {currency}"


def totals_by_currency(
    amounts: Iterable[tuple[str, object]], currencies: Mapping[str, Sequence[str]]
) -> dict[str, Decimal]:
    """Per currency, the sum of per-restaurant amounts (restaurant, amount): each adds to
    its own currency, never to another's; a restaurant of several currencies adds to none."""
    totals: dict[str, Decimal] = {}
    for restaurant, value in amounts:
        known = currencies.get(restaurant, ())
        if len(known) == 1 and value is not None:
            totals[known[0]] = totals.get(known[0], Decimal(0)) + Decimal(str(value))
    return dict(sorted(totals.items()))


def show_figure(value: object, fmt: str, currencies: Sequence[str] = ()) -> str:
    if fmt == "minutes":
        return _minutes(value)
    if fmt == "decimal":
        return "" if value is None else f"{float(value):.1f}"  # type: ignore[arg-type]
    if fmt == "money":
        return show_money(value, currencies)
    return f"{value or 0:,}"


def restaurant_currencies(engine: sa.Engine, companies: list[str]) -> dict[str, tuple[str, ...]]:
    """Each restaurant's currencies, as its events state them (payments and platform
    orders carry one): the unit of its money figures."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select restaurant_id, array_agg(distinct currency order by currency) "
                "from canonical.canonical_events where company_id = any(:c) "
                "and currency is not null group by 1"
            ),
            {"c": companies},
        ).all()
    return {str(row[0]): tuple(str(c).upper() for c in row[1]) for row in rows}


GROUP_TITLES = {
    "workforce": "Workforce signals per restaurant (yesterday and today so far)",
    "crm": "CRM signals per restaurant",
}


def signals_tables(
    engine: sa.Engine, companies: list[str], currencies: Mapping[str, Sequence[str]]
) -> tuple[list[Table], dict[str, dict[str, Decimal]]]:
    """One table per signal group (workforce, crm), a column per headline figure, money
    in each restaurant's currency; and each money figure's totals per currency."""
    figures = [(s.group, h) for s in catalogue.signals() for h in s.headline]
    groups = list(dict.fromkeys(group for group, _ in figures))
    tables = {g: Table(title=GROUP_TITLES.get(g, f"{g} signals per restaurant")) for g in groups}
    for table in tables.values():
        table.add_column("restaurant", justify="left")
    for group, headline in figures:
        tables[group].add_column(headline.label, justify="right")
    money: dict[str, list[tuple[str, object]]] = {
        h.label: [] for _, h in figures if h.format == "money"
    }
    with engine.connect() as conn:
        for row in conn.execute(sa.text(signals_sql()), {"c": companies}):
            restaurant = str(row[0])
            units = currencies.get(restaurant, ())
            cells: dict[str, list[str]] = {g: [restaurant] for g in groups}
            for (group, headline), value in zip(figures, row[1:], strict=True):
                cells[group].append(show_figure(value, headline.format, units))
                if headline.format == "money":
                    money[headline.label].append((restaurant, value))
            for group, values in cells.items():
                tables[group].add_row(*values)
    totals = {label: totals_by_currency(rows, currencies) for label, rows in money.items()}
    return list(tables.values()), totals


NOW_SQL = """
select r.restaurant_id,
    (select count(*) from marts.current_occupied_tables o where o.restaurant_id = r.restaurant_id),
    (select count(*) from marts.current_active_orders a where a.restaurant_id = r.restaurant_id),
    (select count(*) from marts.current_open_bills b where b.restaurant_id = r.restaurant_id)
from ops.restaurants r
where r.company_id = any(:c)
order by r.restaurant_id
"""


def now_table(engine: sa.Engine, specs: Sequence[RestaurantSpec], now: datetime) -> Table:
    """What the partner API's "now" answers: the live views over every landed event."""
    table = Table(title=f"Now ({now:%H:%M} UTC): the live views, as the partner API serves them")
    for col in ("restaurant", "local time", "tables now", "active orders", "open bills"):
        table.add_column(col, justify="left" if col in ("restaurant", "local time") else "right")
    by_id = {spec.restaurant_id: spec for spec in specs}
    companies = sorted({spec.company_id for spec in specs})
    with engine.connect() as conn:
        for restaurant, tables_now, active, bills in conn.execute(
            sa.text(NOW_SQL), {"c": companies}
        ):
            spec = by_id.get(str(restaurant))
            clock = local_clock(spec, now) if spec else ""
            table.add_row(str(restaurant), clock, str(tables_now), str(active), str(bills))
    return table


def show_exports(settings: Settings) -> None:
    """The files `materialize` wrote through the export asset for the business days the
    load touched (the partitions Dagster shows materialized), queried with DuckDB, as an
    analyst would."""
    from partner_signals.exports import list_exports, query_exports

    root = Path(settings.exports_dir)
    files = list(list_exports(root))
    days = sorted({f.business_date for f in files})
    console.print(
        f"[bold]5. Exported files[/bold]: {len(files)} Parquet and CSV files under {root}/, "
        f"business days {', '.join(days) or 'none'} (Dagster asset exports/signal_files)"
    )
    columns, rows = query_exports(
        root,
        "select restaurant_id, count(*) as bills, round(median(time_to_pay_seconds) / 60, 1) "
        "as median_minutes_to_pay from time_to_pay where status = 'paid' group by 1 order by 1",
    )
    table = Table(
        *columns, title='DuckDB over the files: partner-signals query "select ... from time_to_pay"'
    )
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)


def new_whsec() -> str:
    """A Standard Webhooks signing secret: whsec_ and base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def connect_partner(settings: Settings, spec: RestaurantSpec, url: str, secret: str) -> None:
    """Enable the generic webhook adapter for one restaurant toward the local partner,
    through the registry's generic enable (plan, config and secret checked), before the
    signals are materialized, so whatever fills the outbox sees it."""
    with get_engine(settings).begin() as conn:
        enable_adapter(
            conn,
            key=settings.master_key(),
            company_id=spec.company_id,
            adapter="webhook",
            secrets={"secrets": [secret]},
            config={
                "url": url,
                "events": list(DEMO_PUSH_EVENTS),
                "signals": list(DEMO_PUSH_SIGNALS),
            },
            restaurant_id=spec.restaurant_id,
        )


def describe_push(payload: Any) -> tuple[str, str, str]:
    """(type, restaurant, what) of one pushed message, for the demo's table."""
    if not isinstance(payload, dict):
        return "", "", ""
    kind = str(payload.get("type", ""))
    restaurant = str(payload.get("restaurant_id", ""))
    if "signal" in payload:
        value = payload.get("value") or {}
        seconds = value.get("time_to_pay_seconds") if isinstance(value, dict) else None
        what = f"key {payload.get('key')} v{payload.get('version')}"
        if seconds is not None:
            what += f", {float(seconds) / 60:.1f} min to pay"
        return kind, restaurant, what
    at = str(payload.get("occurred_at") or "")[:19].replace("T", " ")
    return kind, restaurant, f"order {payload.get('order_id')} at {at} UTC"


def api_summary(answer: Mapping[str, Any]) -> str:
    """One line on a /workforce answer: what is live now, and how many rows per signal."""
    live = answer.get("now") or {}
    history = ", ".join(
        f"{len(rows)} {name} rows" for name, rows in answer.items() if isinstance(rows, list)
    )
    return (
        f"as of {answer.get('as_of')}: {len(live.get('occupied_tables') or [])} tables occupied, "
        f"{len(live.get('active_orders') or [])} orders active now; {history}"
    )


def curl_command(key: str, restaurant_id: str, port: int = SERVE_API_PORT) -> str:
    url = f"http://127.0.0.1:{port}/v1/restaurants/{restaurant_id}/workforce?window=90m"
    return f"curl -s -H {shlex.quote(f'Authorization: Bearer {key}')} {shlex.quote(url)}"


def ask_partner_api(settings: Settings, key: str, restaurant_id: str) -> str:
    """The printed request, answered by the partner API started for a moment."""
    port = free_port()
    proc = start(
        uvicorn_cmd("api.app:app", host="127.0.0.1", port=port, workers=1), child_env(settings)
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        response = httpx.get(
            f"http://127.0.0.1:{port}/v1/restaurants/{restaurant_id}/workforce",
            params={"window": "90m"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
    finally:
        stop(proc)
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    return f"HTTP 200, {api_summary(response.json())}"


def show_partner_side(
    settings: Settings, specs: Sequence[RestaurantSpec], showcase: RestaurantSpec
) -> None:
    """Section 6: the companies, a partner key, and the API call a partner makes."""
    console.print("[bold]6. The partner API[/bold]")
    by_company: dict[str, list[str]] = {}
    for spec in specs:
        by_company.setdefault(spec.company_id, []).append(f"{spec.restaurant_id} ({spec.currency})")
    for company, restaurants in sorted(by_company.items()):
        console.print(f"   company [cyan]{company}[/cyan]: {', '.join(restaurants)}")
    from api.keys import create_partner_key

    scopes = sorted({catalogue.route_scope(route) for route in catalogue.ROUTES})
    with get_engine(settings).begin() as conn:
        key = create_partner_key(
            conn, company_id=showcase.company_id, scopes=scopes, name="demo partner"
        )
    console.print(
        f"   partner key for {showcase.company_id} ({', '.join(scopes)}), shown once, stored "
        f"hashed:\n   {key}"
    )
    console.print(
        f"   once `partner-signals serve` runs (partner API on :{SERVE_API_PORT}):\n"
        f"   {curl_command(key, showcase.restaurant_id)}",
        soft_wrap=True,
    )
    console.print(
        f"   the same request now: {ask_partner_api(settings, key, showcase.restaurant_id)}"
    )


def show_console(settings: Settings) -> None:
    """Section 8: an operator token for the console and the admin API."""
    from partner_signals.control import operators
    from partner_signals.control.actor import Actor
    from partner_signals.control.errors import Conflict

    with get_engine(settings).begin() as conn:
        try:
            _, token = operators.create(conn, Actor.cli(), name="demo-admin", role="admin")
        except Conflict:  # a demo ran before: its token is replaced
            operators.revoke(conn, Actor.cli(), name="demo-admin")
            _, token = operators.create(conn, Actor.cli(), name="demo-admin", role="admin")
    console.print(
        "[bold]8. The operator console[/bold]: once `partner-signals serve` runs, open "
        f"http://127.0.0.1:{SERVE_ADMIN_PORT}/console and log in with this admin token "
        f"(shown once, stored hashed; the admin API takes it as a bearer token):\n   {token}"
    )


def show_pushes(
    settings: Settings, engine: sa.Engine, partner: LocalPartner, showcase: RestaurantSpec
) -> bool:
    """Section 7: deliver what is due with the one-shot worker (as `partner-signals
    deliveries run` does) and show what the local partner received and verified."""
    from partner_signals.pushes.worker import deliver_due_sync

    summary = deliver_due_sync(engine, key=settings.master_key(), company_id=showcase.company_id)
    received = partner.snapshot()
    verified = [r for r in received if r.verified]
    console.print(
        f"[bold]7. Pushes[/bold]: the webhook adapter for {showcase.restaurant_id} "
        f"({', '.join(DEMO_PUSH_EVENTS + tuple(f'signal.{s}' for s in DEMO_PUSH_SIGNALS))}) "
        f"toward a local partner at {partner.url}; worker: {summary.line()}"
    )
    console.print(
        f"   the partner received {len(received)} pushes: {len(verified)} verified with the "
        f"standardwebhooks library, {len(received) - len(verified)} refused"
    )
    table = Table(title="A few pushes the local partner verified")
    for col in ("webhook-id", "type", "restaurant", "what"):
        table.add_column(col)
    kinds: dict[str, int] = {}
    for push in verified:
        kind = push.event_type
        if kinds.get(kind, 0) >= 3:
            continue
        kinds[kind] = kinds.get(kind, 0) + 1
        table.add_row(push.webhook_id, *describe_push(push.payload))
    console.print(table)
    return bool(verified) and len(verified) == len(received)


def run_demo(*, restaurants: int | None = None, seed: int = 7) -> int:
    settings = get_settings()
    started = time.monotonic()
    console.print(
        "[bold]1. Database[/bold]: "
        + (
            "DATABASE_URL"
            if settings.database_url
            else f"embedded PostgreSQL under {settings.data_dir}/pg"
        )
    )
    engine = get_engine(settings)
    upgrade(engine)
    now = datetime.now(UTC)
    specs = pick_restaurants(WORLD, restaurants, now)
    webhook_secrets, keys, paypal_key = register(settings, specs)

    # Each restaurant's own yesterday and today, by its clock, up to now: the services
    # under way have tables seated, orders in the kitchen and bills open.
    deliveries = service_days_until(specs, now, days=2, seed=seed)
    by_source = Counter(d.source for d in deliveries)
    live = [spec for spec in specs if in_service(spec, now) is not None]
    console.print(
        f"[bold]2. Synthetic service days[/bold]: {len(specs)} restaurants, each one's yesterday "
        f"and today until now by its own clock, {len(deliveries):,} requests ("
        + ", ".join(f"{k} {v:,}" for k, v in sorted(by_source.items()))
        + ")"
    )
    console.print(
        f"   in service now ({now:%H:%M} UTC): "
        + (", ".join(f"{s.restaurant_id} ({local_clock(s, now)})" for s in live) or "none")
    )

    port = free_port()
    proc = start(
        uvicorn_cmd("ingest.app:app", host="127.0.0.1", port=port, workers=2), child_env(settings)
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        t0 = time.monotonic()
        outcomes = asyncio.run(
            send_all(f"http://127.0.0.1:{port}", deliveries, webhook_secrets, keys, paypal_key)
        )
        elapsed = time.monotonic() - t0
    finally:
        stop(proc)
    console.print(
        f"[bold]3. Sent through HTTP ingest[/bold] in {elapsed:.1f} s "
        f"({len(deliveries) / elapsed:,.0f} events/s; webhooks one a request, POS in batches): "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(outcomes.items()))
    )
    companies = sorted(keys)
    console.print(landed_table(engine, companies))

    code = 0 if set(outcomes) <= {"accepted", "duplicate"} else 1
    from pipelines.run import materialize_all  # here: Dagster takes seconds to import

    showcase = (live or specs)[0]
    with LocalPartner(new_whsec()) as partner:
        connect_partner(settings, showcase, partner.url, partner.secret)
        console.print("[bold]4. Materializing the signals through Dagster[/bold]")
        if not materialize_all(settings, console=console, log_level="WARNING", quiet=True):
            code = 1
        currencies = restaurant_currencies(engine, companies)
        tables, totals = signals_tables(engine, companies, currencies)
        for table in tables:
            console.print(table)
        for label, per_currency in totals.items():
            console.print(
                f"   {label}, per currency (never added across currencies): "
                + " · ".join(show_money(v, (c,)) for c, v in per_currency.items())
            )
        console.print(now_table(engine, specs, datetime.now(UTC)))
        show_exports(settings)
        show_partner_side(settings, specs, showcase)
        if not show_pushes(settings, engine, partner, showcase):
            code = 1
    show_console(settings)
    console.print(f"demo finished in {time.monotonic() - started:.0f} s")
    return code
