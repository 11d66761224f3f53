"""`make demo`: a synthetic service day sent through the real HTTP ingest path, then the signals."""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from partner_signals.catalogue import signals as catalogue
from partner_signals.catalogue import sources
from partner_signals.db import get_engine
from partner_signals.db.migrate import upgrade
from partner_signals.processes import child_env, free_port, start, stop, uvicorn_cmd, wait_ready
from partner_signals.providers.paypal import make_test_certificate
from partner_signals.registry import add_restaurant, create_ingest_key, enable_integration
from partner_signals.settings import Settings, get_settings
from synthetic import (
    DEMO_RESTAURANTS,
    Delivery,
    RestaurantSpec,
    service_day,
    signed_headers,
)

console = Console(width=None if sys.stdout.isatty() else 110)
CONCURRENCY = 32


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


def landed_table(engine: sa.Engine, companies: list[str]) -> Table:
    table = Table(title="What landed in raw.*")
    for col in ("restaurant", "source", "events"):
        table.add_column(col, justify="right" if col == "events" else "left")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """
                select restaurant_id, 'pos' as source, count(*) from raw.order_events
                where company_id = any(:c) group by 1, 2
                union all
                select coalesce(
                    body::jsonb #>> '{data,object,metadata,restaurant_id}',
                    split_part(body::jsonb #>> '{resource,custom_id}', ':', 1),
                    body::jsonb #>> '{order,store_id}',
                    body::jsonb #>> '{order,vendorCode}',
                    body::jsonb #>> '{body,order,location_id}',
                    body::jsonb ->> 'branch_id'),
                    source, count(*)
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


def show_figure(value: object, fmt: str) -> str:
    if fmt == "minutes":
        return _minutes(value)
    if fmt == "decimal":
        return "" if value is None else f"{float(value):.1f}"  # type: ignore[arg-type]
    if fmt == "money":
        return f"{value or 0:,.0f}"
    return f"{value or 0:,}"


GROUP_TITLES = {
    "workforce": "Workforce signals per restaurant (yesterday and today so far)",
    "crm": "CRM signals per restaurant",
}


def signals_tables(engine: sa.Engine, companies: list[str]) -> list[Table]:
    """One table per signal group (workforce, crm), a column per headline figure."""
    figures = [(s.group, h) for s in catalogue.signals() for h in s.headline]
    groups = list(dict.fromkeys(group for group, _ in figures))
    tables = {g: Table(title=GROUP_TITLES.get(g, f"{g} signals per restaurant")) for g in groups}
    for table in tables.values():
        table.add_column("restaurant", justify="left")
    for group, headline in figures:
        tables[group].add_column(headline.label, justify="right")
    with engine.connect() as conn:
        for row in conn.execute(sa.text(signals_sql()), {"c": companies}):
            cells: dict[str, list[str]] = {g: [str(row[0])] for g in groups}
            for (group, headline), value in zip(figures, row[1:], strict=True):
                cells[group].append(show_figure(value, headline.format))
            for group, values in cells.items():
                tables[group].add_row(*values)
    return list(tables.values())


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


def run_demo(*, restaurants: int = 5, seed: int = 7) -> int:
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
    specs = list(DEMO_RESTAURANTS[: max(1, min(restaurants, len(DEMO_RESTAURANTS)))])
    webhook_secrets, keys, paypal_key = register(settings, specs)

    now = datetime.now(UTC)
    today = now.date()
    deliveries = service_day(specs, today - timedelta(days=1), seed=seed) + service_day(
        specs, today, seed=seed + 1, until=now
    )
    deliveries.sort(key=lambda d: d.send_at)
    by_source = Counter(d.source for d in deliveries)
    console.print(
        f"[bold]2. Synthetic service days[/bold]: {len(specs)} restaurants, yesterday and today "
        f"until now, {len(deliveries):,} requests ("
        + ", ".join(f"{k} {v:,}" for k, v in sorted(by_source.items()))
        + ")"
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
    console.print(landed_table(engine, sorted(keys)))

    code = 0 if set(outcomes) <= {"accepted", "duplicate"} else 1
    from pipelines.run import materialize_all  # here: Dagster takes seconds to import

    console.print("[bold]4. Materializing the signals through Dagster[/bold]")
    if not materialize_all(settings, console=console, log_level="WARNING", quiet=True):
        code = 1
    for table in signals_tables(engine, sorted(keys)):
        console.print(table)
    show_exports(settings)
    console.print(f"demo finished in {time.monotonic() - started:.0f} s")
    return code
