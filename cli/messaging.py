"""Command-line commands: guest and staff messaging: templates per restaurant, opt-ins and opt-outs."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cli.output import Json, call, emit
from cli.registry import out

Company = Annotated[str, typer.Option(help="Company id")]
Restaurant = Annotated[str, typer.Option(help="Restaurant id")]

messaging_app = typer.Typer(
    help="Messaging a guest would accept: templates, language, opt-ins and STOP.",
    no_args_is_help=True,
)
templates_app = typer.Typer(help="Message templates per restaurant.", no_args_is_help=True)
consents_app = typer.Typer(help="Guests' opt-ins and opt-outs.", no_args_is_help=True)
messaging_app.add_typer(templates_app, name="templates")
messaging_app.add_typer(consents_app, name="consents")

TEMPLATE_COLUMNS = ("kind", "language", "audience", "source", "body", "updated_by")
CONSENT_COLUMNS = (
    "contact",
    "restaurant_id",
    "opted_in_at",
    "source",
    "opted_out_at",
    "opt_out_source",
)


@templates_app.command("list")
def templates_list(company: Company, restaurant: Restaurant, as_json: Json = False) -> None:
    """The restaurant's templates, and the defaults of its language where it has none."""
    from partner_signals.control import messaging

    rows = call(lambda c, a: messaging.list_templates(c, a, company, restaurant))
    emit(rows, TEMPLATE_COLUMNS, as_json=as_json)


@templates_app.command("set")
def templates_set(
    kind: Annotated[str, typer.Argument(help="receipt, nudge, or a new kind")],
    company: Company,
    restaurant: Restaurant,
    body: Annotated[
        str, typer.Option(help="The text with {variables}; '-' reads it from standard input")
    ],
    language: Annotated[
        str | None, typer.Option(help="ISO 639-1 code (default: the restaurant's language)")
    ] = None,
    as_json: Json = False,
) -> None:
    """Set the restaurant's template of KIND (audited)."""
    from partner_signals.control import messaging

    text = sys.stdin.read().strip() if body == "-" else body
    row = call(
        lambda c, a: messaging.set_template(
            c, a, company, restaurant, kind=kind, body=text, language=language
        )
    )
    if as_json:
        emit([row], TEMPLATE_COLUMNS, as_json=True)
    else:
        out.print(f"{row.kind} ({row.language}) template of {restaurant} set")


@templates_app.command("preview")
def templates_preview(
    kind: Annotated[str, typer.Argument()],
    company: Company,
    restaurant: Restaurant,
    value: Annotated[
        list[str] | None, typer.Option("--value", help="A variable as name=value (repeatable)")
    ] = None,
) -> None:
    """Print the text a message of KIND would carry, with these variables."""
    from partner_signals.control import messaging

    values = dict(v.partition("=")[::2] for v in value or [])
    row = call(lambda c, a: messaging.preview(c, a, company, restaurant, kind=kind, values=values))
    out.print(row.text, markup=False, highlight=False)


@messaging_app.command("language")
def language(
    company: Company,
    restaurant: Restaurant,
    set_to: Annotated[
        str | None, typer.Option("--set", help="Change it to this ISO 639-1 code")
    ] = None,
) -> None:
    """Show (or --set) the language a restaurant's messages are written in."""
    from partner_signals.control import messaging

    if set_to is None:
        shown = call(lambda c, a: messaging.get_language(c, a, company, restaurant))
    else:
        shown = call(lambda c, a: messaging.set_language(c, a, company, restaurant, set_to))
    out.print(f"{restaurant}: {shown}")


@consents_app.command("list")
def consents_list(
    company: Company,
    contact: Annotated[str | None, typer.Option(help="Only this number")] = None,
    as_json: Json = False,
) -> None:
    """Opt-ins and opt-outs of a company's guests."""
    from partner_signals.control import messaging

    rows = call(lambda c, a: messaging.list_consents(c, a, company, contact=contact))
    emit(rows, CONSENT_COLUMNS, as_json=as_json)


@consents_app.command("add")
def consents_add(
    contact: Annotated[str, typer.Argument(help="The guest's number, E.164")],
    company: Company,
    source: Annotated[str, typer.Option(help="Where the guest agreed (booking-form, pos...)")],
    restaurant: Annotated[
        str | None, typer.Option(help="Only this restaurant (default: every one)")
    ] = None,
) -> None:
    """Record a guest's opt-in (audited)."""
    from partner_signals.control import messaging

    row = call(
        lambda c, a: messaging.opt_in(
            c, a, company, contact=contact, source=source, restaurant_id=restaurant
        )
    )
    out.print(f"{row.contact} opted in for {row.restaurant_id or 'every restaurant'}")


@messaging_app.command("opt-out")
def opt_out(
    contact: Annotated[str, typer.Argument(help="The guest's number, E.164")],
    company: Company,
    source: Annotated[str, typer.Option(help="How the guest asked")] = "operator",
) -> None:
    """Opt a guest out of every message of the company, as a STOP reply does (audited);
    what still waits for them is cancelled."""
    from partner_signals.control import messaging

    row = call(lambda c, a: messaging.opt_out(c, a, company, contact=contact, source=source))
    out.print(
        f"{row.contact} opted out: {row.consents_opted_out} consents ended, "
        f"{row.messages_cancelled} waiting messages cancelled"
    )


def register(app: typer.Typer) -> None:
    """Mount this module's commands and groups on the root `partner-signals` app."""
    app.add_typer(messaging_app, name="messaging")
