"""Command-line commands: two-way delivery platforms: their API connection, external orders,
webhook registration, the sync log (`platforms ...`, `integrations register-webhook`), over
the same services as the admin API (partner_signals.control.platforms)."""

from __future__ import annotations

import dataclasses
import sys
from typing import Annotated

import orjson
import typer

from cli import registry
from cli.output import Json, call, emit
from cli.registry import out
from partner_signals.settings import get_settings

platforms_app = typer.Typer(
    help="Delivery platforms, the other way: status calls, external orders, the sync log.",
    no_args_is_help=True,
)
Company = Annotated[str, typer.Option(help="Company id")]
Name = Annotated[str, typer.Argument(help="The platform: careem, deliverect, deliveroo, ...")]
ORDER_COLUMNS = (
    "platform",
    "external_order_id",
    "restaurant_id",
    "pos_order_id",
    "status",
    "platform_status",
    "received_at",
    "synced_status",
    "synced_at",
    "calls_pending",
    "calls_dead",
)
SYNC_COLUMNS = (
    "sync_id",
    "platform",
    "sync_type",
    "direction",
    "status",
    "started_at",
    "records_processed",
    "errors",
)
PLATFORM_COLUMNS = (
    "name",
    "auth",
    "connected",
    "api_base_url",
    "statuses",
    "calls_pending",
    "calls_dead",
    "last_registration_ok",
)


def _stdin(value: str | None) -> str | None:
    if value == "-":
        return sys.stdin.readline().strip()
    return value


def platforms_list(company: Company, as_json: Json = False) -> None:
    """Every platform that takes status calls: connected, where calls go, backlog."""
    from partner_signals.control import platforms

    emit(
        call(lambda c, a: platforms.list_platforms(c, a, company)),
        PLATFORM_COLUMNS,
        as_json=as_json,
    )


def platforms_connect(
    name: Name,
    company: Company,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="API-key platforms: the key ('-' reads it from standard input)",
            envvar="PARTNER_SIGNALS_PLATFORM_API_KEY",
            show_envvar=True,
        ),
    ] = None,
    client_id: Annotated[str | None, typer.Option(help="OAuth platforms: the client id")] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(
            help="OAuth platforms: the client secret ('-' reads it from standard input)",
            envvar="PARTNER_SIGNALS_PLATFORM_CLIENT_SECRET",
            show_envvar=True,
        ),
    ] = None,
    api_base_url: Annotated[
        str | None,
        typer.Option(help="Where status calls go (default: the platform's production URL)"),
    ] = None,
    token_url: Annotated[
        str | None, typer.Option(help="OAuth: the token endpoint (default: the platform's)")
    ] = None,
    restaurant: Annotated[
        str | None, typer.Option(help="Only this restaurant's orders (default: the company's)")
    ] = None,
) -> None:
    """Store a platform's API credentials (sealed; never shown again); status calls start."""
    from partner_signals.control import platforms

    key = get_settings().master_key()
    row = call(
        lambda c, a: platforms.connect(
            c,
            a,
            company,
            name,
            key=key,
            api_key=_stdin(api_key),
            client_id=client_id,
            client_secret=_stdin(client_secret),
            api_base_url=api_base_url,
            token_url=token_url,
            restaurant_id=restaurant,
        )
    )
    out.print(
        f"{name} connected for {company}: status calls ({', '.join(row.statuses)}) go to "
        f"{row.api_base_url}"
    )


def platforms_disconnect(
    name: Name,
    company: Company,
    restaurant: Annotated[str | None, typer.Option(help="Only this restaurant's scope")] = None,
) -> None:
    """Stop status calls to a platform; what is queued waits for a later connect."""
    from partner_signals.control import platforms

    row = call(lambda c, a: platforms.disconnect(c, a, company, name, restaurant_id=restaurant))
    out.print(f"{name} for {company}: {'still connected' if row.connected else 'disconnected'}")


def platforms_orders(
    company: Company,
    platform: Annotated[str | None, typer.Option(help="Only this platform's orders")] = None,
    status: Annotated[str | None, typer.Option(help="Only orders in this status")] = None,
    restaurant: Annotated[str | None, typer.Option(help="Only this restaurant's")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 100,
    as_json: Json = False,
) -> None:
    """External orders: each platform order, its POS order, its status and sync state."""
    from partner_signals.control import platforms

    orders, _ = call(
        lambda c, a: platforms.list_external_orders(
            c,
            a,
            company,
            platform=platform,
            status=status,
            restaurant_id=restaurant,
            limit=limit,
        )
    )
    emit(orders, ORDER_COLUMNS, as_json=as_json)


def platforms_order(
    platform: Annotated[str, typer.Argument(help="The platform")],
    external_order_id: Annotated[str, typer.Argument(help="The platform's order id")],
    company: Company,
    as_json: Json = False,
) -> None:
    """One external order, with the raw body of the platform's latest event."""
    from partner_signals.control import platforms

    order = call(
        lambda c, a: platforms.get_external_order(c, a, company, platform, external_order_id)
    )
    if as_json:
        out.print_json(orjson.dumps(dataclasses.asdict(order), default=str).decode())
        return
    emit([order], ORDER_COLUMNS, as_json=False)


def platforms_sync_log(
    company: Company,
    platform: Annotated[str | None, typer.Option(help="Only this platform")] = None,
    direction: Annotated[str | None, typer.Option(help="inbound or outbound")] = None,
    status: Annotated[str | None, typer.Option(help="completed or failed")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 100,
    as_json: Json = False,
) -> None:
    """The sync log: inbound batch windows and outbound call runs, newest first."""
    from partner_signals.control import platforms

    entries, _ = call(
        lambda c, a: platforms.list_sync_log(
            c, a, company, platform=platform, direction=direction, status=status, limit=limit
        )
    )
    emit(entries, SYNC_COLUMNS, as_json=as_json)


def platforms_sync() -> None:
    """Run the platforms step now: platform webhooks and POS events into external orders,
    the POS's progress into status calls (`deliveries run` does it too)."""
    from partner_signals.db import get_engine
    from partner_signals.platforms.sync import sync_until_done

    out.print(sync_until_done(get_engine()).line())


def integrations_register_webhook(
    name: Annotated[str, typer.Argument(help="The delivery platform (talabat, careem, ...)")],
    company: Company,
    public_url: Annotated[
        str,
        typer.Option(
            help="The ingest API's base URL as the platform reaches it",
            envvar="PARTNER_SIGNALS_PUBLIC_INGEST_URL",
            show_envvar=True,
        ),
    ],
    as_json: Json = False,
) -> None:
    """Register our webhook URL and the stored signing secret with the platform, and record
    its answer."""
    from partner_signals.control import platforms

    key = get_settings().master_key()
    result = call(
        lambda c, a: platforms.register_webhook(c, a, company, name, key=key, public_url=public_url)
    )
    if as_json:
        out.print_json(orjson.dumps(dataclasses.asdict(result)).decode())
    else:
        out.print(f"{name} for {company}: {result.url}: {result.detail}")
    if not result.ok:
        raise registry.fail(f"{name} did not register the webhook: {result.detail}")


def register(app: typer.Typer) -> None:
    """Mount this module's commands and groups on the root `partner-signals` app."""
    app.add_typer(platforms_app, name="platforms")
    platforms_app.command("list")(platforms_list)
    platforms_app.command("connect")(platforms_connect)
    platforms_app.command("disconnect")(platforms_disconnect)
    platforms_app.command("orders")(platforms_orders)
    platforms_app.command("order")(platforms_order)
    platforms_app.command("sync-log")(platforms_sync_log)
    platforms_app.command("sync")(platforms_sync)
    registry.integrations_app.command("register-webhook")(integrations_register_webhook)
