"""`keys` (partner API keys) and `ingest-keys` (POS ingest keys): list, create, revoke.

Each command calls `partner_signals.control.keys` as the command line's actor, like the
admin API's /admin/v1/companies/{company}/keys and .../ingest-keys routes. A key's secret
is printed once, on stdout alone (the notice goes to stderr), so it can be piped.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
import typer

from cli.output import Json, call, emit
from cli.registry import console, out
from partner_signals.control.actor import Actor

partner_app = typer.Typer(help="Partner API keys.", no_args_is_help=True)
ingest_app = typer.Typer(help="POS ingest keys.", no_args_is_help=True)

PARTNER_COLUMNS = (
    "prefix",
    "name",
    "scopes",
    "restaurant_id",
    "created_at",
    "last_used_at",
    "revoked_at",
)
INGEST_COLUMNS = ("prefix", "created_at", "last_used_at", "revoked_at")
Prefix = Annotated[str, typer.Argument(help="The key's first 10 characters")]
Company = Annotated[str, typer.Option(help="Company id")]
MaybeCompany = Annotated[
    str | None, typer.Option(help="Company id (default: the company of the live key)")
]
IncludeRevoked = Annotated[bool, typer.Option(help="Show revoked keys too")]


def register(app: typer.Typer) -> None:
    """Mount `keys` and `ingest-keys` on the root `partner-signals` app."""
    app.add_typer(partner_app, name="keys")
    app.add_typer(ingest_app, name="ingest-keys")


def _stored_once(secret: str) -> None:
    console.print("Store this key now; it cannot be shown again.")
    out.print(secret, soft_wrap=True)


@partner_app.command("create")
def partner_create(
    company: Annotated[str, typer.Option(help="Company the key reads")],
    scope: Annotated[
        list[str],
        typer.Option(
            help="read:workforce, read:crm, read:events, read:exports, read:orders (repeat)"
        ),
    ],
    restaurant: Annotated[str | None, typer.Option(help="Limit the key to one restaurant")] = None,
    name: Annotated[str | None, typer.Option(help="A label for operators")] = None,
) -> None:
    """Create a partner API key; printed once, stored hashed."""
    from partner_signals.control import keys

    _, secret = call(
        lambda c, a: keys.create_partner_key(
            c, a, company, scopes=scope, restaurant_id=restaurant, name=name
        )
    )
    _stored_once(secret)


@partner_app.command("list")
def partner_list(
    company: Company, include_revoked: IncludeRevoked = False, as_json: Json = False
) -> None:
    """A company's partner keys: prefix, scopes, restaurant, created, last used (never the key)."""
    from partner_signals.control import keys

    rows = call(lambda c, a: keys.list_partner_keys(c, a, company, include_revoked=include_revoked))
    emit(rows, PARTNER_COLUMNS, as_json=as_json)


@partner_app.command("revoke")
def partner_revoke(prefix: Prefix, company: MaybeCompany = None) -> None:
    """Revoke a partner key by its prefix; every API worker refuses it within a second."""
    from partner_signals.control import keys

    def revoke(c: sa.Connection, a: Actor) -> list[keys.PartnerKey]:
        owner = company or keys.company_of_prefix(c, a, "partner", prefix)
        return keys.revoke_partner_key(c, a, owner, prefix)

    out.print(f"{len(call(revoke))} key(s) revoked")


@ingest_app.command("create")
def ingest_create(company: Company) -> None:
    """Create a POS ingest key. It is printed once and stored only as a hash."""
    from partner_signals.control import keys

    _, secret = call(lambda c, a: keys.create_ingest_key(c, a, company))
    _stored_once(secret)


@ingest_app.command("list")
def ingest_list(
    company: Company, include_revoked: IncludeRevoked = False, as_json: Json = False
) -> None:
    """A company's POS ingest keys: prefix, created, last used (never the key)."""
    from partner_signals.control import keys

    rows = call(lambda c, a: keys.list_ingest_keys(c, a, company, include_revoked=include_revoked))
    emit(rows, INGEST_COLUMNS, as_json=as_json)


@ingest_app.command("revoke")
def ingest_revoke(prefix: Prefix, company: MaybeCompany = None) -> None:
    """Revoke a POS ingest key by its prefix; every ingest worker refuses it within a second."""
    from partner_signals.control import keys

    def revoke(c: sa.Connection, a: Actor) -> list[keys.IngestKey]:
        owner = company or keys.company_of_prefix(c, a, "ingest", prefix)
        return keys.revoke_ingest_key(c, a, owner, prefix)

    out.print(f"{len(call(revoke))} key(s) revoked")
