"""`partner-signals unmapped`: the landed events that map to nothing (marts.unmapped_events)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.output import Json, print_json
from cli.registry import fail

console = Console(stderr=True)
out = Console()


def unmapped_command(
    company: Annotated[str | None, typer.Option(help="Only this company's events")] = None,
    as_json: Json = False,
) -> None:
    """Events landed but mapped to no canonical type or status, or quarantined for naming a
    restaurant that is not their company's (reason foreign_restaurant), per company,
    source, event name and reason (kept in raw, left out of every signal). Exit 1 if the
    model is not built."""
    from partner_signals.db import get_engine
    from partner_signals.unmapped import FOREIGN_RESTAURANT, read_unmapped

    with get_engine().connect() as conn:
        names = read_unmapped(conn, company_id=company)
    if names is None:
        raise fail(
            "marts.unmapped_events is not built yet: run "
            "`partner-signals materialize` (or `serve`) first"
        )
    if as_json:
        print_json(names)
        return
    if not names:
        out.print("No unmapped events: every landed event maps or is ignored on purpose.")
        return
    table = Table(title="Unmapped events (marts.unmapped_events)")
    for column in ("company", "source", "event", "reason", "events", "first received",
                   "last received", "sample raw id"):  # fmt: skip
        # Names fold rather than end in "…": an operator maps them by their exact text.
        table.add_column(column, justify="right" if column == "events" else "left", overflow="fold")
    for n in names:
        event = n.provider_event_type
        if n.provider_statuses:
            event += f" (status {', '.join(n.provider_statuses)})"
        table.add_row(
            n.company_id,
            n.source,
            event,
            n.reason,
            str(n.events),
            f"{n.first_received_at:%Y-%m-%d %H:%M:%S}",
            f"{n.last_received_at:%Y-%m-%d %H:%M:%S}",
            f"{n.raw_table} {n.sample_raw_id}",
        )
    out.print(table)
    total = sum(n.events for n in names)
    out.print(
        f"{total} events under {len(names)} names. Map them in the source's staging yml "
        "(docs/providers.md) or list them under ignored_event_types."
    )
    foreign = sum(n.events for n in names if n.reason == FOREIGN_RESTAURANT)
    if foreign:
        out.print(
            f"{foreign} of them are quarantined ({FOREIGN_RESTAURANT}): signed by the company "
            "but naming a restaurant it does not have. Register the restaurant under that "
            "company if it is theirs (the nightly rebuild then lets them in); otherwise "
            "ask who holds the company's webhook secret."
        )
