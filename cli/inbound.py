"""`restaurants list|add|update` and `integrations list|disable|rotate|status|test`: the
inbound part of the control plane from the command line, over the same services as the
admin API (partner_signals.control.restaurants and .inbound), as the actor `cli:<user>`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from cli import registry
from cli.output import Json, call, cell, emit
from cli.registry import out
from partner_signals.settings import get_settings

RESTAURANT_COLUMNS = ("restaurant_id", "name", "timezone", "has_events", "created_at")
Company = Annotated[str, typer.Option(help="Company id")]
Restaurant = Annotated[
    str | None, typer.Option(help="Only this restaurant's scope (default: the whole company)")
]


def add_restaurant_creating_company(
    company: str, restaurant: str, timezone: str, name: str | None
) -> None:
    """`restaurants add`: the company is created when it is new (audited as such)."""
    import sqlalchemy as sa

    from partner_signals.control import audit, restaurants
    from partner_signals.control.actor import Actor
    from partner_signals.control.errors import Invalid
    from partner_signals.ids import ID_PATTERN, is_id
    from partner_signals.registry import ensure_company

    def add(conn: sa.Connection, actor: Actor) -> tuple[restaurants.Restaurant, bool]:
        if not is_id(company):
            raise Invalid("company", f"must match {ID_PATTERN}")
        restaurants.check_timezone(timezone)
        exists = conn.execute(
            sa.text("select 1 from ops.companies where company_id = :c"), {"c": company}
        ).scalar()
        if not exists:
            ensure_company(conn, company_id=company)
            audit.record(
                conn,
                actor,
                action="companies.add",
                target=f"company/{company}",
                company_id=company,
                after={"name": company},
            )
        return restaurants.add_restaurant(
            conn, actor, company, restaurant_id=restaurant, timezone=timezone, name=name
        )

    row, new = call(add)
    out.print(
        f"restaurant {row.restaurant_id} {'added' if new else 'already there'} for company "
        f"{company} ({row.timezone})"
    )


def enable_for_restaurant(
    provider: str,
    company: str,
    restaurant: str,
    *,
    webhook_secret: str | None,
    paypal_webhook_id: str | None,
    paypal_certificate: Path | None,
) -> None:
    """`integrations enable PROVIDER --restaurant R`: only that restaurant's events."""
    from partner_signals.control import inbound

    if webhook_secret == "-":  # noqa: S105 - the stdin marker, not a secret
        webhook_secret = sys.stdin.readline().strip()
    key = get_settings().master_key()
    row = call(
        lambda c, a: inbound.enable(
            c,
            a,
            company,
            provider,
            key=key,
            secret=webhook_secret,
            restaurant_id=restaurant,
            paypal_webhook_id=paypal_webhook_id,
            paypal_certificate=paypal_certificate.read_text() if paypal_certificate else None,
        )
    )
    out.print(f"{provider} enabled for {company}, restaurants {', '.join(row.restaurants or ())}")


def restaurants_list(company: Company, as_json: Json = False) -> None:
    """A company's restaurants with their time zone and whether events have landed."""
    from partner_signals.control import restaurants

    emit(
        call(lambda c, a: restaurants.list_restaurants(c, a, company)),
        RESTAURANT_COLUMNS,
        as_json=as_json,
    )


def restaurants_update(
    restaurant: Annotated[str, typer.Argument(help="Restaurant id")],
    company: Company,
    name: Annotated[str | None, typer.Option(help="New display name")] = None,
    timezone: Annotated[
        str | None, typer.Option(help="New IANA time zone (refused once events have landed)")
    ] = None,
) -> None:
    """Rename a restaurant, or change its time zone while no event has landed for it."""
    from partner_signals.control import restaurants

    row = call(
        lambda c, a: restaurants.update_restaurant(
            c, a, company, restaurant, name=name, timezone=timezone
        )
    )
    out.print(f"restaurant {row.restaurant_id}: {row.name!r}, {row.timezone}")


def integrations_list(company: Company, as_json: Json = False) -> None:
    """Every inbound provider: enabled, for which restaurants, secret age, last event."""
    from partner_signals.control import inbound

    rows = call(lambda c, a: inbound.list_integrations(c, a, company))
    if as_json:
        emit(rows, (), as_json=True)
        return
    table = Table("name", "kind", "enabled", "restaurants", "secret age", "last event", box=None)
    for i in rows:
        table.add_row(
            i.name,
            i.kind,
            "yes" if i.enabled else "no",
            "all" if i.enabled and i.restaurants is None else ", ".join(i.restaurants or ()),
            _age(i.secret_age_seconds),
            cell(i.last_event_at),
        )
    out.print(table)


def _age(seconds: int | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def integrations_disable(
    name: Annotated[str, typer.Argument(help="Inbound provider")],
    company: Company,
    restaurant: Restaurant = None,
) -> None:
    """Disable an inbound provider: ingest refuses its next webhook with 404."""
    from partner_signals.control import inbound

    row = call(lambda c, a: inbound.disable(c, a, company, name, restaurant_id=restaurant))
    state = "still enabled for " + ", ".join(row.restaurants or ()) if row.enabled else "disabled"
    out.print(f"{name} for {company}: {state}")


def integrations_rotate(
    name: Annotated[str, typer.Argument(help="Inbound provider")],
    company: Company,
    webhook_secret: Annotated[
        str,
        typer.Option(
            help="The new signing secret ('-' reads it from standard input)",
            envvar="PARTNER_SIGNALS_WEBHOOK_SECRET",
            show_envvar=True,
        ),
    ],
    grace_seconds: Annotated[
        int, typer.Option(help="How long the current secret stays accepted (0: not at all)")
    ] = 86400,
    restaurant: Restaurant = None,
) -> None:
    """Replace a provider's signing secret, keeping the current one valid for a grace period."""
    from datetime import timedelta

    from partner_signals.control import inbound

    if webhook_secret == "-":  # noqa: S105 - the stdin marker, not a secret
        webhook_secret = sys.stdin.readline().strip()
    key = get_settings().master_key()
    row = call(
        lambda c, a: inbound.rotate(
            c,
            a,
            company,
            name,
            key=key,
            secret=webhook_secret,
            grace=timedelta(seconds=grace_seconds),
            restaurant_id=restaurant,
        )
    )
    until = (
        f"; the previous secret is accepted until {cell(row.previous_secret_expires_at)}"
        if row.previous_secret_expires_at
        else "; the previous secret is no longer accepted"
    )
    out.print(f"{name} secret rotated for {company}{until}")


def integrations_status(
    name: Annotated[str, typer.Argument(help="Inbound provider")],
    company: Company,
    as_json: Json = False,
) -> None:
    """Last event, events and rejections by reason, unmapped events, secret age."""
    import dataclasses

    from partner_signals.control import inbound

    s = call(lambda c, a: inbound.status(c, a, company, name))
    if as_json:
        out.print_json(orjson.dumps(dataclasses.asdict(s), default=str).decode())
        return
    out.print(
        f"{name} for {company}: {'enabled' if s.enabled else 'disabled'}"
        + (f" (restaurants {', '.join(s.restaurants)})" if s.restaurants else "")
    )
    out.print(f"  last event: {cell(s.last_event_at) or 'never'}")
    out.print(f"  events: {s.events_last_hour} last hour, {s.events_last_day} last day")
    for r in s.rejections:
        out.print(f"  rejected {r.reason}: {r.last_hour} last hour, {r.last_day} last day")
    if s.unmapped is None:
        out.print("  unmapped events: not computed yet (materialize the assets)")
    for u in s.unmapped or ():
        out.print(f"  unmapped {u.event_type!r} ({u.reason}): {u.events} events")
    out.print(f"  secret age: {_age(s.secret_age_seconds) or 'none stored'}")
    if s.previous_secret_expires_at:
        out.print(f"  previous secret accepted until {cell(s.previous_secret_expires_at)}")


def integrations_test(
    name: Annotated[
        str, typer.Argument(help="An inbound provider (stripe, deliveroo, ...) or an adapter")
    ],
    company: Company,
    restaurant: Annotated[str | None, typer.Option(help="The restaurant to test for")] = None,
    event_type: Annotated[
        str | None, typer.Option(help="Inbound: the provider's event name to sign")
    ] = None,
    as_json: Json = False,
) -> None:
    """Test an inbound provider (signed sample, nothing lands) or a partner adapter.

    A provider: a sample event signed with the stored secret, verified as ingest does.
    An adapter: its URL and credentials checked with a harmless request."""
    import dataclasses

    from cli import pushes
    from partner_signals.control import inbound
    from partner_signals.providers import PROVIDERS

    if name not in PROVIDERS:
        pushes.integrations_test(adapter=name, company=company, restaurant=restaurant)
        return
    key = get_settings().master_key()
    result = call(
        lambda c, a: inbound.verify_sample(
            c, a, company, name, key=key, restaurant_id=restaurant, event_type=event_type
        )
    )
    if as_json:
        out.print_json(orjson.dumps(dataclasses.asdict(result)).decode())
    else:
        status = f" -> {result.canonical_status}" if result.canonical_status else ""
        out.print(
            f"{name} for {company}/{result.restaurant_id}: {result.detail}; event "
            f"{result.event_type!r} is {result.mapping}{status}; nothing landed"
        )
    if not result.accepted:
        raise registry.fail(f"{name} test failed: {result.detail}")


def register(app: typer.Typer) -> None:
    """Mount this module's commands and groups on the root `partner-signals` app."""
    restaurants = registry.restaurants_app
    restaurants.command("list")(restaurants_list)
    restaurants.command("update")(restaurants_update)
    integrations = registry.integrations_app
    integrations.command("list")(integrations_list)
    integrations.command("disable")(integrations_disable)
    integrations.command("rotate")(integrations_rotate)
    integrations.command("status")(integrations_status)
    # One `integrations test` for both kinds: this one runs the adapter check (cli/pushes)
    # for an adapter's name, so it replaces the adapter-only command mounted before it.
    integrations.registered_commands[:] = [
        c for c in integrations.registered_commands if c.name != "test"
    ]
    integrations.command("test")(integrations_test)
