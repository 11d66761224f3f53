"""Which export partitions a signals run touched: the business days of the canonical events
the exported marts have processed since the files were last written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import dagster as dg
import sqlalchemy as sa
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from partner_signals.catalogue import signals as catalogue
from partner_signals.exports import touched_business_days
from partner_signals.readers import EXPORTS, Position, read_position, save_position
from pipelines.signals.sensors import DBT_PACKAGE

WATERMARK_TABLE = "canonical.dbt_incremental_watermarks"
# On an export run: the canonical loaded_at its files cover up to; saved on success.
EXPORTS_UNTIL_TAG = "partner-signals/exports-until"
# What a retry of a failed export run keeps: its business days, and the position to save.
RETRIED_TAGS = (
    ASSET_PARTITION_RANGE_START_TAG,
    ASSET_PARTITION_RANGE_END_TAG,
    PARTITION_NAME_TAG,
    EXPORTS_UNTIL_TAG,
)


def watermark_models(manifest: Mapping[str, Any]) -> list[str]:
    """The models the exported marts are built from (themselves included) that record in
    the watermark table how far into canonical_events they have processed (the
    incremental protocol's `record_watermark` post-hook)."""
    nodes: Mapping[str, Any] = manifest["nodes"]
    parents: Mapping[str, list[str]] = manifest["parent_map"]
    todo = [f"model.{DBT_PACKAGE}.{s.model}" for s in catalogue.exported()]
    seen: set[str] = set()
    found: set[str] = set()
    while todo:
        unique_id = todo.pop()
        if unique_id in seen or not unique_id.startswith("model."):
            continue
        seen.add(unique_id)
        node = nodes[unique_id]
        hooks = node.get("config", {}).get("post-hook") or []
        if any("record_watermark" in str(hook.get("sql", "")) for hook in hooks):
            found.add(str(node.get("alias") or node["name"]))
        todo.extend(parents.get(unique_id, []))
    return sorted(found)


def processed_up_to(conn: sa.Connection, models: list[str]) -> datetime | None:
    """The newest canonical loaded_at every exported mart has processed: the lowest
    watermark among `models`. None while one of them has never been built."""
    if not models:
        return conn.execute(
            sa.text("select max(loaded_at) from canonical.canonical_events")
        ).scalar()
    if conn.execute(sa.text(f"select to_regclass('{WATERMARK_TABLE}')")).scalar() is None:
        return None
    row = conn.execute(
        sa.text(f"select count(*), min(loaded_at) from {WATERMARK_TABLE} where model = any(:m)"),
        {"m": models},
    ).one()
    if int(row[0]) < len(models):
        return None
    value: datetime | None = row[1]
    return value


@dataclass(frozen=True)
class ExportPlan:
    """Files to write: the days touched by events loaded in (since, until], those of them
    that are export partitions, and those that are not (before the first partition)."""

    since: datetime | None
    until: datetime
    partition_keys: list[str]
    outside: list[date]

    def run_tags(self) -> dict[str, str]:
        """One run over the partitions from the first touched day to the last (the asset
        writes a range in one run), stamped with where the files then stand."""
        return {
            ASSET_PARTITION_RANGE_START_TAG: self.partition_keys[0],
            ASSET_PARTITION_RANGE_END_TAG: self.partition_keys[-1],
            EXPORTS_UNTIL_TAG: self.until.isoformat(),
        }

    def describe(self) -> str:
        if not self.partition_keys:
            return "no export partition touched"
        first, last = self.partition_keys[0], self.partition_keys[-1]
        return first if first == last else f"{first} .. {last}"


def plan_exports(
    conn: sa.Connection,
    *,
    models: list[str],
    partitions: dg.PartitionsDefinition[Any],
    now: datetime | None = None,
) -> ExportPlan | None:
    """What the files lack since they were last written (ops.canonical_readers), up to
    where every exported mart stands. The exported marts are incremental tables and
    views over them, so their lowest watermark is exact even while a run is half way.
    None: nothing new."""
    until = processed_up_to(conn, models)
    saved = read_position(conn, EXPORTS)
    since = saved.loaded_at if saved else None
    if until is None or (since is not None and until <= since):
        return None
    days = touched_business_days(conn, since=since, until=until)
    valid = set(partitions.get_partition_keys(current_time=now))
    keys = [day.isoformat() for day in days if day.isoformat() in valid]
    outside = [day for day in days if day.isoformat() not in valid]
    return ExportPlan(since=since, until=until, partition_keys=keys, outside=outside)


def mark_exported(conn: sa.Connection, until: datetime) -> None:
    """The files now cover the canonical events loaded up to `until`."""
    save_position(conn, EXPORTS, Position(until))


def retry_request(failed: dg.DagsterRun) -> dg.RunRequest | None:
    """The failed export run again: the same business days (one, from the schedule, or a
    range, from the sensor) and the same position to save on success. Keyed by the failed
    run, so each failure asks for one retry. None for a run that named no days."""
    tags = {key: value for key, value in failed.tags.items() if key in RETRIED_TAGS}
    day = tags.pop(PARTITION_NAME_TAG, None)
    if day is None and ASSET_PARTITION_RANGE_START_TAG not in tags:
        return None
    return dg.RunRequest(run_key=f"retry of {failed.run_id}", partition_key=day, tags=tags)
