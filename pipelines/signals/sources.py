"""Where lineage starts: the tables the dbt sources read as Dagster assets under the keys the
dbt sources already map to (raw/order_events, ops/restaurants, ...), the raw landing tables
observed for their newest row and when it landed (by the sensor below, and by
`materialize`). External assets with recorded observations: Dagster's observable source
assets are still beta."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dagster as dg
import orjson
import psycopg
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from pipelines.project import dbt_project, ensure_manifest
from pipelines.resources import DatabaseResource
from pipelines.signals.sensors import load_manifest
from pipelines.signals.translator import SignalsTranslator, describe

RAW_SCHEMA = "raw"
# Landing tables no model reads, shown beside the others so an operator sees them land.
UNREAD_RAW_TABLES = {
    "rejected_requests": (
        "Requests ingest refused (bad signature, malformed, unknown tenant): status, reason "
        "and a truncated body without secrets, kept for audit. No model reads it."
    ),
}


def source_specs(manifest: Mapping[str, Any]) -> list[dg.AssetSpec]:
    """One spec per dbt source table, keyed as the translator keys the dbt assets' deps
    on it, grouped by source (raw, ops), plus the raw tables no model reads."""
    translator = SignalsTranslator()
    specs = [
        dg.AssetSpec(
            key=translator.get_asset_key(source),
            group_name=str(source["source_name"]),
            description=describe(source),
            kinds={"postgres"},
        )
        for source in manifest["sources"].values()
    ]
    specs += [
        dg.AssetSpec(
            key=dg.AssetKey([RAW_SCHEMA, table]),
            group_name=RAW_SCHEMA,
            description=description,
            kinds={"postgres"},
        )
        for table, description in UNREAD_RAW_TABLES.items()
    ]
    return sorted(specs, key=lambda spec: spec.key.to_user_string())


ensure_manifest(dbt_project)
SOURCE_SPECS = source_specs(load_manifest())
RAW_KEYS = [spec.key for spec in SOURCE_SPECS if spec.key.path[0] == RAW_SCHEMA]


@dataclass(frozen=True)
class RawTableState:
    """A landing table's newest row: its id (ids only grow) and when ingest accepted it."""

    key: dg.AssetKey
    newest_id: int | None
    newest_received_at: datetime | None

    @property
    def data_version(self) -> str:
        return str(self.newest_id or 0)

    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {"newest_id": self.newest_id or 0}
        if self.newest_received_at is not None:
            stamp = dg.MetadataValue.timestamp(self.newest_received_at)
            metadata["newest_received_at"] = stamp
            # The key Dagster's freshness checks on source assets read.
            metadata["dagster/last_updated_timestamp"] = stamp
        return metadata

    def observation(self) -> dg.AssetObservation:
        return dg.AssetObservation(
            asset_key=self.key,
            metadata=self.metadata(),
            tags={DATA_VERSION_TAG: self.data_version},
        )


def raw_table_states(
    conn: psycopg.Connection[Any], keys: list[dg.AssetKey] = RAW_KEYS
) -> list[RawTableState]:
    """The newest row of each raw table, read by primary key (no index on received_at)."""
    states = []
    for key in keys:
        row = conn.execute(
            f"select id, received_at from {RAW_SCHEMA}.{key.path[-1]} order by id desc limit 1"
        ).fetchone()
        states.append(RawTableState(key, row[0], row[1]) if row else RawTableState(key, None, None))
    return states


def changed_states(
    states: list[RawTableState], cursor: str | None
) -> tuple[list[RawTableState], str]:
    """The tables whose newest row moved since `cursor` (the ids last reported; every
    table, empty ones too, the first time), and the next cursor."""
    seen: dict[str, Any] = orjson.loads(cursor) if cursor else {}
    changed = [
        s
        for s in states
        if s.key.to_user_string() not in seen or seen[s.key.to_user_string()] != s.newest_id
    ]
    following = {s.key.to_user_string(): s.newest_id for s in states}
    return changed, orjson.dumps(following).decode()


@dg.sensor(
    name="raw_tables_observer",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Records an observation of each raw landing table whose newest row changed: the "
        "row's id and when it landed. No run: the sensor reads two index entries a table."
    ),
)
def raw_tables_observer(
    context: dg.SensorEvaluationContext, database: DatabaseResource
) -> dg.SensorResult | dg.SkipReason:
    with database.connect() as conn:
        states = raw_table_states(conn)
    changed, cursor = changed_states(states, context.cursor)
    if not changed:
        return dg.SkipReason("no new rows in the raw tables")
    return dg.SensorResult(asset_events=[s.observation() for s in changed], cursor=cursor)
