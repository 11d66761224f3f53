"""`adapters` and `dead-letters`: outbound partner adapters and failed pushes from the
command line, over the same `partner_signals.control` services as the admin API."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import datetime
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from cli.options import adapter_settings, with_adapter_options
from cli.output import Json, call, cell
from cli.registry import console, fail, out
from partner_signals.adapters import ADAPTERS
from partner_signals.settings import get_settings

adapters_app = typer.Typer(
    help="Outbound partner adapters: enable, disable, exclusions, test, status.",
    no_args_is_help=True,
)
dead_letters_app = typer.Typer(help="Pushes that gave up, and their replay.", no_args_is_help=True)

Company = Annotated[str, typer.Option(help="Company id")]
Name = Annotated[str, typer.Argument(help=", ".join(sorted(ADAPTERS)))]
Restaurant = Annotated[
    str | None, typer.Option(help="One restaurant's own integration (default: company-wide)")
]


def register(app: typer.Typer) -> None:
    """Mount this module's commands and groups on the root `partner-signals` app."""
    app.add_typer(adapters_app, name="adapters")
    app.add_typer(dead_letters_app, name="dead-letters")


def _json(value: Any) -> None:
    out.print_json(orjson.dumps(value, default=str).decode())


def _print_summaries(rows: list[Any], as_json: bool) -> None:
    if as_json:
        _json([dataclasses.asdict(r) for r in rows])
        return
    table = Table("adapter", "plan", "enabled", "where", "excluded", box=None)
    for r in rows:
        plan = f"locked (needs {r.unlocked_by})" if r.plan_locked else "included"
        where = ", ".join((["company-wide"] if r.company_wide else []) + r.restaurants)
        excluded = ", ".join(
            e for s in r.scopes if s.restaurant_id is None for e in s.excluded_restaurants
        )
        table.add_row(r.adapter, plan, "yes" if r.enabled else "no", where, excluded)
    out.print(table)


@adapters_app.command("list")
def adapters_list(company: Company, as_json: Json = False) -> None:
    """Every adapter for a company: plan lock, where it is enabled, exclusions."""
    from partner_signals.control import adapters

    key = get_settings().master_key()
    rows = call(lambda c, a: adapters.list_adapters(c, a, company, key=key))
    _print_summaries(rows, as_json)


@adapters_app.command("show")
def adapters_show(name: Name, company: Company, as_json: Json = False) -> None:
    """One adapter for a company, with each scope's config and stored secret names."""
    from partner_signals.control import adapters

    key = get_settings().master_key()
    row = call(lambda c, a: adapters.get_adapter(c, a, company, name, key=key))
    _print_summaries([row], as_json)


def _param(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def adapters_enable(
    *, name: str, company: str, restaurant: str | None, keep_previous: bool, **values: Any
) -> None:
    """Enable (or reconfigure) an adapter company-wide or for one restaurant. Its
    options are its declared fields (`integrations adapters` lists them); secrets left
    out keep the stored ones."""
    from partner_signals.control import adapters

    config, secrets = adapter_settings(name, values, previous={})
    key = get_settings().master_key()
    row = call(
        lambda c, a: adapters.enable(
            c,
            a,
            company,
            name,
            key=key,
            config=config,
            secrets=secrets,
            restaurant_id=restaurant,
            keep_previous=keep_previous,
        )
    )
    scope = f"restaurant {restaurant}" if restaurant else f"every restaurant of {company}"
    out.print(f"{row.adapter} enabled for {scope}")


adapters_app.command("enable")(
    with_adapter_options(
        adapters_enable,
        [
            _param("name", Name),
            _param("company", Company),
            _param("restaurant", Restaurant, None),
        ],
        [
            _param(
                "keep_previous",
                Annotated[
                    bool, typer.Option(help="Rotation: keep the previous signing secrets too")
                ],
                False,
            )
        ],
    )
)


@adapters_app.command("disable")
def adapters_disable(name: Name, company: Company, restaurant: Restaurant = None) -> None:
    """Disable an adapter; its pending pushes wait until it is enabled again."""
    from partner_signals.control import adapters

    call(lambda c, a: adapters.disable(c, a, company, name, restaurant_id=restaurant))
    out.print(f"{name} disabled for {restaurant or company}")


@adapters_app.command("exclude")
def adapters_exclude(
    name: Name,
    company: Company,
    restaurant: Annotated[str, typer.Option(help="The restaurant to leave out")],
) -> None:
    """Leave a restaurant out of a company-wide adapter (its pending pushes are cancelled)."""
    from partner_signals.control import adapters

    call(lambda c, a: adapters.exclude(c, a, company, name, restaurant_id=restaurant))
    out.print(f"{restaurant} excluded from {company}'s {name}")


@adapters_app.command("include")
def adapters_include(
    name: Name,
    company: Company,
    restaurant: Annotated[str, typer.Option(help="The restaurant to take back")],
) -> None:
    """Take an excluded restaurant back into a company-wide adapter."""
    from partner_signals.control import adapters

    call(lambda c, a: adapters.include(c, a, company, name, restaurant_id=restaurant))
    out.print(f"{restaurant} included in {company}'s {name} again")


@adapters_app.command("test")
def adapters_test(
    name: Name, company: Company, restaurant: Restaurant = None, as_json: Json = False
) -> None:
    """Send the adapter's harmless signed ping with the stored URL and credentials."""
    from partner_signals.control import adapters

    key = get_settings().master_key()
    result = call(
        lambda c, a: adapters.check_connection(
            c, a, company, name, key=key, restaurant_id=restaurant
        )
    )
    if as_json:
        _json(dataclasses.asdict(result))
        if not result.ok:
            raise typer.Exit(1)
        return
    state = "" if result.enabled else " (adapter is disabled)"
    if result.ok:
        out.print(f"{name} ok: HTTP {result.status_code}{state}")
        return
    code = f"HTTP {result.status_code} " if result.status_code else ""
    raise fail(f"{name} test failed: {code}{result.detail}{state}")


@adapters_app.command("status")
def adapters_status(name: Name, company: Company, as_json: Json = False) -> None:
    """Last success, the last hour's outcomes, pending and dead letters waiting."""
    from partner_signals.control import adapters

    row = call(lambda c, a: adapters.status(c, a, company, name))
    if as_json:
        _json(dataclasses.asdict(row))
        return
    table = Table(box=None, show_header=False)
    for key, value in dataclasses.asdict(row).items():
        table.add_row(key, cell(value))
    out.print(table)


@dead_letters_app.command("list")
def dead_letters_list(
    company: Company,
    adapter: Annotated[str | None, typer.Option(help="Only this adapter")] = None,
    event_type: Annotated[str | None, typer.Option(help="Only this event type")] = None,
    restaurant: Annotated[str | None, typer.Option(help="Only this restaurant")] = None,
    since: Annotated[datetime | None, typer.Option(help="Dead-lettered at or after")] = None,
    include_replayed: Annotated[bool, typer.Option(help="Show replayed ones too")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
    cursor: Annotated[str | None, typer.Option(help="The next page's cursor")] = None,
    as_json: Json = False,
) -> None:
    """A company's dead letters, newest first (credentials redacted)."""
    from partner_signals.control import dead_letters

    key = get_settings().master_key()
    letters, following = call(
        lambda c, a: dead_letters.list_dead_letters(
            c,
            a,
            company,
            key=key,
            adapter=adapter,
            event_type=event_type,
            restaurant_id=restaurant,
            since=since,
            include_replayed=include_replayed,
            limit=limit,
            cursor=cursor,
        )
    )
    if as_json:
        _json({"items": [dataclasses.asdict(d) for d in letters], "next_cursor": following})
        return
    table = Table("id", "at", "adapter", "restaurant", "event", "fault", "reason", box=None)
    for d in letters:
        table.add_row(
            str(d.dead_letter_id),
            cell(d.at),
            d.adapter,
            d.restaurant_id or "",
            d.event_type,
            d.fault,
            d.reason,
        )
    out.print(table)
    if following:
        console.print(f"older dead letters: --cursor {following}")


@dead_letters_app.command("replay")
def dead_letters_replay(
    company: Company,
    ids: Annotated[list[int] | None, typer.Argument(help="Dead letter ids")] = None,
    adapter: Annotated[str | None, typer.Option(help="Only this adapter")] = None,
    event_type: Annotated[str | None, typer.Option(help="Only this event type")] = None,
    restaurant: Annotated[str | None, typer.Option(help="Only this restaurant")] = None,
    fault: Annotated[str | None, typer.Option(help="partner or ours")] = None,
    since: Annotated[datetime | None, typer.Option(help="Dead-lettered at or after")] = None,
    until: Annotated[datetime | None, typer.Option(help="Dead-lettered before")] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Every waiting dead letter of the company")
    ] = False,
) -> None:
    """Put dead letters back in the outbox (by id, by filter, or --all); the push worker
    (`deliveries run`, or the one under serve) sends them."""
    from partner_signals.control import dead_letters

    result = call(
        lambda c, a: dead_letters.replay(
            c,
            a,
            company,
            ids=ids or None,
            adapter=adapter,
            event_type=event_type,
            restaurant_id=restaurant,
            fault=fault,
            since=since,
            until=until,
            everything=everything,
        )
    )
    out.print(f"{result.requeued} dead letters re-queued")
    if result.skipped_disabled:
        out.print(
            f"{result.skipped_disabled} left alone: their adapter is disabled "
            "(enable it again, then replay)"
        )
