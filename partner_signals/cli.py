"""The `partner-signals` command: database, registry, ingest, demo and serve."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from partner_signals.settings import get_settings

app = typer.Typer(
    help="partner-signals: restaurant dining state turned into partner signals.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
restaurants_app = typer.Typer(help="Companies and restaurants.", no_args_is_help=True)
integrations_app = typer.Typer(help="Inbound providers and partner adapters.", no_args_is_help=True)
keys_app = typer.Typer(help="POS ingest keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(restaurants_app, name="restaurants")
app.add_typer(integrations_app, name="integrations")
app.add_typer(keys_app, name="ingest-keys")

console = Console(stderr=True)
out = Console()


def _quiet_tools() -> None:
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (safe to run again)."""
    from partner_signals.db import get_engine
    from partner_signals.db.migrate import current, upgrade

    engine = get_engine()
    upgrade(engine)
    out.print(f"database at revision {current(engine)}")


@restaurants_app.command("add")
def restaurants_add(
    company: Annotated[str, typer.Option(help="Company id (created if new)")],
    restaurant: Annotated[str, typer.Option(help="Restaurant id, unique across companies")],
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. Asia/Dubai")],
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
) -> None:
    """Register a restaurant, creating its company when it is new."""
    from partner_signals.db import get_engine
    from partner_signals.registry import RegistryError, add_restaurant

    try:
        with get_engine().begin() as conn:
            new = add_restaurant(
                conn, company_id=company, restaurant_id=restaurant, timezone=timezone, name=name
            )
    except RegistryError as exc:
        raise fail(str(exc)) from None
    out.print(f"restaurant {restaurant} {'added' if new else 'updated'} for company {company}")


@integrations_app.command("enable")
def integrations_enable(
    provider: Annotated[
        str,
        typer.Argument(
            help="Inbound: stripe, paypal, careem, talabat, deliveroo, jahez. "
            "Partner adapters: webhook, workforce, crm, messaging"
        ),
    ],
    company: Annotated[str, typer.Option(help="Company id")],
    restaurant: Annotated[
        str | None, typer.Option(help="Adapters: only this restaurant (default: all of them)")
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Adapters: the partner URL (messaging: API base URL)")
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            help="webhook: the whsec_ signing secret ('-' reads it from standard input)",
            envvar="PARTNER_SIGNALS_ADAPTER_SECRET",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="workforce, crm: the partner API key ('-' reads standard input)",
            envvar="PARTNER_SIGNALS_ADAPTER_API_KEY",
        ),
    ] = None,
    account_sid: Annotated[str | None, typer.Option(help="messaging: Twilio AccountSid")] = None,
    auth_token: Annotated[
        str | None,
        typer.Option(
            help="messaging: Twilio AuthToken ('-' reads standard input)",
            envvar="PARTNER_SIGNALS_ADAPTER_AUTH_TOKEN",
        ),
    ] = None,
    from_number: Annotated[
        str | None, typer.Option(help="messaging: sending number (E.164) or MG... service")
    ] = None,
    events: Annotated[
        str | None, typer.Option(help="Adapters: comma-separated event types (default: all)")
    ] = None,
    signals: Annotated[
        str | None, typer.Option(help="Adapters: comma-separated signals (default: all)")
    ] = None,
    location_id: Annotated[
        str | None, typer.Option(help="workforce, crm: the partner's id of the restaurant")
    ] = None,
    receipt_to: Annotated[
        str | None, typer.Option(help="messaging: number for receipts when the guest's is unknown")
    ] = None,
    nudge_to: Annotated[
        str | None, typer.Option(help="messaging: staff number for unpaid-bill nudges")
    ] = None,
    nudge_after_minutes: Annotated[
        float | None, typer.Option(help="messaging: nudge when a bill is unpaid this long")
    ] = None,
    webhook_secret: Annotated[
        str | None,
        typer.Option(
            help="The provider's signing secret ('-' reads it from standard input)",
            envvar="PARTNER_SIGNALS_WEBHOOK_SECRET",
            show_envvar=True,
        ),
    ] = None,
    keep_previous: Annotated[
        bool, typer.Option(help="Keep accepting the previous secret too (rotation)")
    ] = False,
    paypal_webhook_id: Annotated[str | None, typer.Option(help="PayPal: the webhook id")] = None,
    paypal_certificate: Annotated[
        Path | None, typer.Option(help="PayPal: PEM certificate file of the signing key")
    ] = None,
) -> None:
    """Enable an inbound provider or a partner adapter; secrets are stored encrypted."""
    from partner_signals.adapters import ADAPTERS
    from partner_signals.crypto import decrypt_json
    from partner_signals.db import get_engine
    from partner_signals.providers import PROVIDERS
    from partner_signals.registry import RegistryError, enable_integration, integration_context

    settings = get_settings()
    if provider in ADAPTERS:
        from partner_signals.pushes.cli import adapter_settings, read_secret
        from partner_signals.registry import enable_adapter, read_integration_secrets

        try:
            with get_engine().begin() as conn:
                previous = (
                    read_integration_secrets(
                        conn,
                        key=settings.master_key(),
                        company_id=company,
                        provider=provider,
                        restaurant_id=restaurant,
                    )
                    if keep_previous
                    else {}
                )
                adapter_config, sealed = adapter_settings(
                    provider,
                    url=url,
                    secret=read_secret(secret),
                    api_key=read_secret(api_key),
                    account_sid=account_sid,
                    auth_token=read_secret(auth_token),
                    from_number=from_number,
                    events=events,
                    signals=signals,
                    location_id=location_id,
                    receipt_to=receipt_to,
                    nudge_to=nudge_to,
                    nudge_after_minutes=nudge_after_minutes,
                    previous=previous,
                )
                enable_adapter(
                    conn,
                    key=settings.master_key(),
                    company_id=company,
                    adapter=provider,
                    secrets=sealed,
                    config=adapter_config,
                    restaurant_id=restaurant,
                )
        except RegistryError as exc:
            raise fail(str(exc)) from None
        scope = f"restaurant {restaurant}" if restaurant else f"every restaurant of {company}"
        rotating = len(sealed.get("secrets", [])) > 1
        out.print(
            f"{provider} enabled for {scope}"
            + (f" ({len(sealed['secrets'])} signing secrets in use)" if rotating else "")
        )
        return
    if provider not in PROVIDERS:
        known = ", ".join([*PROVIDERS, *ADAPTERS])
        raise fail(f"unknown provider or adapter {provider!r}; one of {known}")
    if restaurant:
        raise fail("inbound providers are enabled per company; drop --restaurant")
    secrets: dict[str, list[str]] = {}
    config: dict[str, object] = {}
    if provider == "paypal":
        if not paypal_webhook_id or not paypal_certificate:
            raise fail("paypal needs --paypal-webhook-id and --paypal-certificate")
        config = {
            "webhook_id": paypal_webhook_id,
            "certificates": [paypal_certificate.read_text()],
        }
    else:
        if webhook_secret == "-":  # noqa: S105 - the stdin marker, not a secret
            webhook_secret = sys.stdin.readline().strip()
        if not webhook_secret:
            raise fail(f"{provider} needs --webhook-secret")
        secrets = {"webhook_secrets": [webhook_secret]}
    import sqlalchemy as sa

    try:
        with get_engine().begin() as conn:
            if keep_previous and secrets:
                blob = conn.execute(
                    sa.text(
                        "select secret_ciphertext from ops.integrations where company_id = :c "
                        "and provider = :p and restaurant_id is null"
                    ),
                    {"c": company, "p": provider},
                ).scalar()
                if blob:
                    old = decrypt_json(
                        settings.master_key(),
                        bytes(blob),
                        context=integration_context(company, provider, None),
                    )
                    secrets["webhook_secrets"] += [
                        s
                        for s in old.get("webhook_secrets", [])
                        if s not in secrets["webhook_secrets"]
                    ][:2]
            enable_integration(
                conn,
                key=settings.master_key(),
                company_id=company,
                provider=provider,
                secrets=secrets or None,
                config=config,
            )
    except RegistryError as exc:
        raise fail(str(exc)) from None
    count = len(secrets.get("webhook_secrets", []))
    detail = f" ({count} signing secrets accepted)" if count > 1 else ""
    out.print(f"{provider} enabled for company {company}{detail}")


@keys_app.command("create")
def ingest_keys_create(company: Annotated[str, typer.Option(help="Company id")]) -> None:
    """Create a POS ingest key. It is printed once and stored only as a hash."""
    from partner_signals.db import get_engine
    from partner_signals.registry import RegistryError, create_ingest_key

    try:
        with get_engine().begin() as conn:
            key = create_ingest_key(conn, company_id=company)
    except RegistryError as exc:
        raise fail(str(exc)) from None
    console.print("Store this key now; it cannot be shown again.")
    out.print(key)


@app.command("ingest")
def ingest(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="NDJSON of POS events")],
    company: Annotated[str, typer.Option(help="Company the events belong to")],
) -> None:
    """Backfill POS events from an NDJSON file (same validation and dedup as POST /events)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ingest.bulk import count_lines, ingest_file
    from partner_signals.db import libpq_url

    total = count_lines(file)
    with Progress(
        TextColumn("[bold]ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        # Redrawn as chunks commit rather than by rich's refresh thread: ingest_file
        # forks its workers, which is only safe while this process runs one thread.
        auto_refresh=False,
    ) as progress:
        task = progress.add_task("ingest", total=total, rate="")

        def advance(n: int) -> None:
            progress.advance(task, n)
            elapsed = progress.tasks[0].elapsed or 0
            if elapsed:
                progress.update(task, rate=f"{progress.tasks[0].completed / elapsed:,.0f} events/s")
            progress.refresh()

        try:
            result = ingest_file(
                file, conninfo=libpq_url(), company_id=company, on_progress=advance
            )
        except ValueError as exc:
            raise fail(str(exc)) from None
        progress.update(task, completed=total, refresh=True)
    out.print(
        f"{result.lines} lines: {result.accepted} accepted, {result.duplicates} duplicates, "
        f"{len(result.rejected)} rejected"
    )
    for number, message in result.rejected[:20]:
        console.print(f"  line {number}: {message}")
    if result.rejected:
        raise typer.Exit(1)


@app.command("demo")
def demo(
    restaurants: Annotated[int, typer.Option(help="How many demo restaurants (max 5)")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic day")] = 7,
) -> None:
    """Load a synthetic service day through the real ingest path, then show what landed."""
    _quiet_tools()
    from partner_signals.demo import run_demo

    raise typer.Exit(run_demo(restaurants=restaurants, seed=seed))


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    ingest_port: Annotated[int, typer.Option()] = 8000,
    api_port: Annotated[int, typer.Option()] = 8001,
    dagster_port: Annotated[int, typer.Option()] = 3000,
    workers: Annotated[int, typer.Option(help="uvicorn workers per API")] = 2,
    dagster: Annotated[bool, typer.Option(help="Also run the Dagster UI and daemon")] = True,
) -> None:
    """Run the ingest API, the partner API and Dagster (UI and daemon) until interrupted."""
    _quiet_tools()
    from partner_signals.serve import run_all

    raise typer.Exit(
        run_all(
            host=host,
            ingest_port=ingest_port,
            api_port=api_port,
            dagster_port=dagster_port,
            workers=workers,
            dagster=dagster,
        )
    )


def _mount_optional() -> None:
    """Commands owned by the pipelines and api packages register themselves here."""
    import importlib
    import importlib.util

    for module in ("pipelines.cli", "api.cli", "partner_signals.pushes.cli"):
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module).register(app)


_mount_optional()


def main() -> None:
    app()
