"""`db`, `restaurants` and `integrations`: the operator's registry commands (`ingest-keys`: cli/keys.py)."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.console import console, fail, out  # noqa: F401 (console: other commands import it from here)
from cli.options import adapter_settings, with_adapter_options
from partner_signals.adapters import ADAPTERS
from partner_signals.catalogue import sources
from partner_signals.settings import get_settings

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
restaurants_app = typer.Typer(help="Companies and restaurants.", no_args_is_help=True)
integrations_app = typer.Typer(help="Inbound providers and partner adapters.", no_args_is_help=True)


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
    """Register a restaurant, creating its company when it is new (the same again is a
    no-op; another name or zone is refused: `restaurants update`)."""
    from cli.inbound import add_restaurant_creating_company

    add_restaurant_creating_company(company, restaurant, timezone, name)


def _param(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


# `integrations enable`'s options: the fixed ones, then one per adapter field (cli/options.py).
_BEFORE = [
    _param(
        "provider",
        Annotated[
            str,
            typer.Argument(
                help=f"Inbound: {', '.join(sources.inbound_names())}. "
                f"Partner adapters: {', '.join(ADAPTERS)}"
            ),
        ],
    ),
    _param("company", Annotated[str, typer.Option(help="Company id")]),
    _param(
        "restaurant",
        Annotated[
            str | None,
            typer.Option(help="Only this restaurant (default: all of them)"),
        ],
        None,
    ),
]
_AFTER = [
    _param(
        "webhook_secret",
        Annotated[
            str | None,
            typer.Option(
                help="The provider's signing secret ('-' reads it from standard input)",
                envvar="PARTNER_SIGNALS_WEBHOOK_SECRET",
                show_envvar=True,
            ),
        ],
        None,
    ),
    _param(
        "keep_previous",
        Annotated[bool, typer.Option(help="Keep accepting the previous secret too (rotation)")],
        False,
    ),
    _param(
        "paypal_webhook_id",
        Annotated[str | None, typer.Option(help="PayPal: the webhook id")],
        None,
    ),
    _param(
        "paypal_certificate",
        Annotated[
            Path | None, typer.Option(help="PayPal: PEM certificate file of the signing key")
        ],
        None,
    ),
]


def integrations_enable(
    *,
    provider: str,
    company: str,
    restaurant: str | None,
    webhook_secret: str | None,
    keep_previous: bool,
    paypal_webhook_id: str | None,
    paypal_certificate: Path | None,
    **adapter_values: Any,
) -> None:
    """Enable an inbound provider or a partner adapter; secrets are stored encrypted.

    An adapter's options are its declared fields: `integrations adapters` lists them."""
    if provider in ADAPTERS:
        _enable_adapter(provider, company, restaurant, keep_previous, adapter_values)
    else:
        _enable_provider(
            provider,
            company,
            restaurant,
            webhook_secret=webhook_secret,
            keep_previous=keep_previous,
            paypal_webhook_id=paypal_webhook_id,
            paypal_certificate=paypal_certificate,
        )


def _enable_provider(
    provider: str,
    company: str,
    restaurant: str | None,
    *,
    webhook_secret: str | None,
    keep_previous: bool,
    paypal_webhook_id: str | None,
    paypal_certificate: Path | None,
) -> None:
    from partner_signals.db import get_engine
    from partner_signals.providers import PROVIDERS
    from partner_signals.registry import RegistryError, enable_integration

    settings = get_settings()
    if provider not in PROVIDERS:
        known = ", ".join([*PROVIDERS, *ADAPTERS])
        raise fail(f"unknown provider or adapter {provider!r}; one of {known}")
    if restaurant:
        from cli.inbound import enable_for_restaurant

        enable_for_restaurant(
            provider,
            company,
            restaurant,
            webhook_secret=webhook_secret,
            paypal_webhook_id=paypal_webhook_id,
            paypal_certificate=paypal_certificate,
        )
        return
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

    try:
        with get_engine().begin() as conn:
            if keep_previous and secrets and _enabled_company_wide(conn, company, provider):
                # A rotation: the current secret stays accepted for the default grace
                # period (as `integrations rotate` and the admin API do), not for ever.
                from partner_signals.control import inbound
                from partner_signals.control.actor import Actor

                view = inbound.rotate(
                    conn,
                    Actor.cli(),
                    company,
                    provider,
                    key=settings.master_key(),
                    secret=secrets["webhook_secrets"][0],
                )
                until = view.previous_secret_expires_at
                out.print(
                    f"{provider} enabled for company {company} (2 signing secrets accepted; "
                    f"the previous one until {until:%Y-%m-%d %H:%M} UTC)"
                    if until
                    else f"{provider} enabled for company {company}"
                )
                return
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


def _enabled_company_wide(conn: Any, company: str, provider: str) -> bool:
    import sqlalchemy as sa

    return bool(
        conn.execute(
            sa.text(
                "select enabled and secret_ciphertext is not null from ops.integrations "
                "where company_id = :c and provider = :p and restaurant_id is null"
            ),
            {"c": company, "p": provider},
        ).scalar()
    )


def _enable_adapter(
    adapter: str,
    company: str,
    restaurant: str | None,
    keep_previous: bool,
    values: dict[str, Any],
) -> None:
    from partner_signals.db import get_engine
    from partner_signals.registry import RegistryError, enable_adapter, read_integration_secrets

    settings = get_settings()
    try:
        with get_engine().begin() as conn:
            previous = (
                read_integration_secrets(
                    conn,
                    key=settings.master_key(),
                    company_id=company,
                    provider=adapter,
                    restaurant_id=restaurant,
                )
                if keep_previous
                else {}
            )
            config, sealed = adapter_settings(adapter, values, previous=previous)
            enable_adapter(
                conn,
                key=settings.master_key(),
                company_id=company,
                adapter=adapter,
                secrets=sealed,
                config=config,
                restaurant_id=restaurant,
            )
    except RegistryError as exc:
        raise fail(str(exc)) from None
    scope = f"restaurant {restaurant}" if restaurant else f"every restaurant of {company}"
    rotating = [v for v in sealed.values() if isinstance(v, list) and len(v) > 1]
    out.print(
        f"{adapter} enabled for {scope}"
        + (f" ({len(rotating[0])} signing secrets in use)" if rotating else "")
    )


integrations_app.command("enable")(with_adapter_options(integrations_enable, _BEFORE, _AFTER))


@integrations_app.command("adapters")
def integrations_adapters(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """The partner adapters: what each is, the plans that include it, the fields it takes."""
    from partner_signals.adapters import PLAN_ADAPTERS

    if as_json:
        from cli.output import print_json

        print_json(
            [
                {
                    "name": name,
                    "description": adapter.description,
                    "plans": [plan for plan, names in PLAN_ADAPTERS.items() if name in names],
                    "fields": [
                        {
                            "option": spec.flag,
                            "field": spec.name,
                            "kind": spec.kind,
                            "secret": spec.secret,
                            "required": spec.required,
                            "description": spec.description,
                            "envvar": spec.cli.envvar,
                        }
                        for spec in adapter.fields()
                    ],
                }
                for name, adapter in ADAPTERS.items()
            ]
        )
        return

    for name, adapter in ADAPTERS.items():
        plans = [plan for plan, names in PLAN_ADAPTERS.items() if name in names]
        out.print(f"[bold]{name}[/bold]: {adapter.description} (plans: {', '.join(plans)})")
        table = Table("option", "field", "kind", "required", "description", box=None)
        for secret in (False, True):
            specs = [spec for spec in adapter.fields() if spec.secret is secret]
            if specs:
                table.add_row(f"[dim]{'secrets' if secret else 'config'}[/dim]")
            for spec in specs:
                table.add_row(
                    spec.flag,
                    spec.name,
                    spec.kind,
                    "yes" if spec.required else "",
                    spec.description
                    + (" ('-': stdin)" if spec.cli.stdin else "")
                    + (f" (env {spec.cli.envvar})" if spec.cli.envvar else ""),
                )
        out.print(table)
