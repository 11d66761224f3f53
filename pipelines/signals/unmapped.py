"""Unmapped events are loud: a check on marts.unmapped_events that warns while landed
events map to nothing, with their counts and a raw id to read one from."""

import dagster as dg

from partner_signals.db import get_engine
from partner_signals.settings import Settings, get_settings
from partner_signals.unmapped import UnmappedName, describe, read_unmapped
from pipelines.resources import DatabaseResource

UNMAPPED_EVENTS_KEY = dg.AssetKey(["marts", "unmapped_events"])
# Rows listed in the check's table; the counts cover every row.
SHOWN = 20


def unmapped_markdown(names: list[UnmappedName]) -> str:
    lines = [
        "| company | source | event | reason | events | last received | sample raw id |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n in names[:SHOWN]:
        event = n.provider_event_type.replace("|", "\\|")
        if n.provider_statuses:
            event += " (" + ", ".join(n.provider_statuses).replace("|", "\\|") + ")"
        lines.append(
            f"| {n.company_id} | {n.source} | `{event}` | {n.reason} | {n.events} "
            f"| {n.last_received_at.isoformat()} | {n.raw_table} {n.sample_raw_id} |"
        )
    if len(names) > SHOWN:
        lines.append(f"\n{len(names) - SHOWN} more: `partner-signals unmapped`")
    return "\n".join(lines)


def unmapped_check_result(names: list[UnmappedName] | None) -> dg.AssetCheckResult:
    """Passes when nothing is unmapped; otherwise warns with the counts and a sample."""
    names = names or []
    total = sum(n.events for n in names)
    by_source: dict[str, int] = {}
    for n in names:
        by_source[n.source] = by_source.get(n.source, 0) + n.events
    metadata: dict[str, dg.RawMetadataValue] = {
        "unmapped_events": total,
        "unmapped_names": len({(n.source, n.provider_event_type) for n in names}),
        "by_source": dg.MetadataValue.json(by_source),
    }
    if names:
        top = names[0]  # the most events
        metadata["unmapped"] = dg.MetadataValue.md(unmapped_markdown(names))
        metadata["sample"] = dg.MetadataValue.json(
            {
                "company_id": top.company_id,
                "source": top.source,
                "provider_event_type": top.provider_event_type,
                "raw_table": top.raw_table,
                "raw_id": top.sample_raw_id,
            }
        )
        metadata["sample_raw_id"] = top.sample_raw_id
    return dg.AssetCheckResult(
        passed=not names,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=(
            None
            if not names
            else f"{total} landed events map to nothing; most: {describe(names[0])}"
        ),
    )


@dg.asset_check(
    asset=UNMAPPED_EVENTS_KEY,
    name="no_unmapped_events",
    description=(
        "Warns while landed events map to no canonical type or status (they are kept in "
        "raw and left out of every signal): counts per source and event name, and a raw id "
        "to read one. Fix by adding the name or status word to the source's vocabulary "
        "(docs/providers.md) or to its ignored_event_types. Reason foreign_restaurant: "
        "quarantined, the event names a restaurant that is not its company's."
    ),
    blocking=False,
)
def no_unmapped_events(database: DatabaseResource) -> dg.AssetCheckResult:
    engine = get_engine(Settings(database_url=database.url(), data_dir=get_settings().data_dir))
    with engine.connect() as conn:
        return unmapped_check_result(read_unmapped(conn))
