"""`operators`, `audit` and `companies`: the control plane from the command line.

Each command calls the same `partner_signals.control` service as the admin API, as the
actor `cli:<os user>` (an admin: whoever holds the database credentials holds it all).
Listings take `--json`; a refusal is one `error:` line and exit 1.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from cli.output import Json, call, cell, emit
from cli.registry import console, out

operators_app = typer.Typer(help="Operator tokens for the admin API.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail of every change.", no_args_is_help=True)
companies_app = typer.Typer(help="Companies and their plans.", no_args_is_help=True)


@operators_app.command("create")
def operators_create(
    name: Annotated[str, typer.Option(help="Who holds the token (shown in the audit trail)")],
    role: Annotated[str, typer.Option(help="viewer, operator or admin")],
    company: Annotated[str | None, typer.Option(help="Bind the token to one company")] = None,
) -> None:
    """Create an operator token. It is printed once and stored only as a digest."""
    from partner_signals.control import operators

    op, token = call(lambda c, a: operators.create(c, a, name=name, role=role, company_id=company))
    console.print(
        f"operator {op.name} ({op.role}) created; store this token now, it cannot be shown again."
    )
    out.print(token)


@operators_app.command("list")
def operators_list(
    as_json: Json = False,
    include_revoked: Annotated[bool, typer.Option(help="Show revoked tokens too")] = False,
) -> None:
    """Operators with their role, company and when their token was last used."""
    from partner_signals.control import operators

    rows = call(lambda c, a: operators.list_operators(c, a, include_revoked=include_revoked))
    emit(
        rows,
        ("name", "role", "company_id", "token_prefix", "created_at", "last_used_at", "revoked_at"),
        as_json=as_json,
    )


@operators_app.command("revoke")
def operators_revoke(name: Annotated[str, typer.Argument(help="The operator's name")]) -> None:
    """Revoke an operator's token: the admin API refuses it from the next request on."""
    from partner_signals.control import operators

    op = call(lambda c, a: operators.revoke(c, a, name=name))
    out.print(f"operator {op.name} revoked")


@audit_app.command("list")
def audit_list(
    company: Annotated[str | None, typer.Option(help="Only this company's changes")] = None,
    action: Annotated[
        str | None, typer.Option(help="An action, or a prefix ending in '.' (integrations.)")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="operator name or cli:<user>")] = None,
    target: Annotated[str | None, typer.Option(help="target prefix")] = None,
    since: Annotated[datetime | None, typer.Option(help="from this time (ISO 8601)")] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 50,
    cursor: Annotated[str | None, typer.Option(help="the next page's cursor")] = None,
    as_json: Json = False,
) -> None:
    """The audit trail, newest first."""
    from partner_signals.control import audit

    entries, following = call(
        lambda c, a: audit.list_entries(
            c,
            a,
            company_id=company,
            action=action,
            who=actor,
            target=target,
            since=since,
            limit=limit,
            cursor=cursor,
        )
    )
    if as_json:
        out.print_json(
            orjson.dumps(
                {"items": [dataclasses.asdict(e) for e in entries], "next_cursor": following},
                default=str,
            ).decode()
        )
        return
    table = Table("at", "actor", "action", "target", "change", box=None)
    for e in entries:
        table.add_row(cell(e.at), e.actor, e.action, e.target or "", _change(e.before, e.after))
    out.print(table)
    if following:
        console.print(f"older entries: --cursor {following}")


def _change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    before, after = before or {}, after or {}
    keys = [k for k in {**before, **after} if before.get(k) != after.get(k)]
    return ", ".join(f"{k}: {before.get(k)!s} -> {after.get(k)!s}" for k in keys)


@companies_app.command("list")
def companies_list(as_json: Json = False) -> None:
    """Companies with their plan, restaurants and enabled integrations."""
    from partner_signals.control import companies

    rows = call(companies.list_companies)
    emit(
        rows,
        ("company_id", "name", "plan", "restaurants", "integrations_enabled", "created_at"),
        as_json=as_json,
    )


@companies_app.command("show")
def companies_show(company: Annotated[str, typer.Argument()], as_json: Json = False) -> None:
    """One company."""
    from partner_signals.control import companies

    row = call(lambda c, a: companies.get_company(c, a, company))
    emit(
        [row],
        ("company_id", "name", "plan", "restaurants", "integrations_enabled", "created_at"),
        as_json=as_json,
    )


@companies_app.command("set-plan")
def companies_set_plan(
    company: Annotated[str, typer.Argument()],
    plan: Annotated[str, typer.Argument(help="starter, standard or enterprise")],
) -> None:
    """Change a company's plan (refused while an enabled adapter is outside it)."""
    from partner_signals.control import companies

    row = call(lambda c, a: companies.set_plan(c, a, company, plan))
    out.print(f"{row.company_id} is on the {row.plan} plan")
