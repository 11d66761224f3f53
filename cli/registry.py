"""`db`, `restaurants`, `integrations` and `ingest-keys`: the operator's registry commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from partner_signals.settings import get_settings

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
restaurants_app = typer.Typer(help="Companies and restaurants.", no_args_is_help=True)
integrations_app = typer.Typer(help="Inbound providers and partner adapters.", no_args_is_help=True)
keys_app = typer.Typer(help="POS ingest keys.", no_args_is_help=True)

console = Console(stderr=True)
out = Console()


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
        from cli.pushes import adapter_settings, read_secret
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
