"""Where the raw landing tables stand: high-water ids, and which sources landed since."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from partner_signals.catalogue.sources import staging_model_by_source

# Each source's rows feed exactly one staging model (its catalogue entry's model).
STAGING_MODEL_BY_SOURCE = staging_model_by_source()


@dataclass(frozen=True)
class RawHighWater:
    """The highest landed id in each raw table (ids only grow)."""

    order_events: int = 0
    webhook_events: int = 0

    def to_cursor(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> RawHighWater:
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
            return cls(int(data.get("order_events", 0)), int(data.get("webhook_events", 0)))
        except (ValueError, TypeError, AttributeError):
            return cls()

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> RawHighWater | None:
        try:
            return cls(
                int(metadata["raw_order_events_high_water"]),
                int(metadata["raw_webhook_events_high_water"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def as_metadata(self) -> dict[str, int]:
        return {
            "raw_order_events_high_water": self.order_events,
            "raw_webhook_events_high_water": self.webhook_events,
        }

    def is_ahead_of(self, other: RawHighWater) -> bool:
        return self.order_events > other.order_events or self.webhook_events > other.webhook_events

    def union(self, other: RawHighWater) -> RawHighWater:
        """Each table's higher mark: rows up to either are behind both."""
        return RawHighWater(
            max(self.order_events, other.order_events),
            max(self.webhook_events, other.webhook_events),
        )


def read_high_water(conn: psycopg.Connection[Any]) -> RawHighWater:
    row = conn.execute(
        """
        select
            (select coalesce(max(id), 0) from raw.order_events),
            (select coalesce(max(id), 0) from raw.webhook_events)
        """
    ).fetchone()
    assert row is not None
    return RawHighWater(int(row[0]), int(row[1]))


def sources_landed_between(
    conn: psycopg.Connection[Any], since: RawHighWater, until: RawHighWater
) -> set[str]:
    """The sources with raw rows in (since, until]; id ranges use the primary keys."""
    rows = conn.execute(
        """
        select distinct source from raw.order_events where id > %(o0)s and id <= %(o1)s
        union
        select distinct source from raw.webhook_events where id > %(w0)s and id <= %(w1)s
        """,
        {
            "o0": since.order_events,
            "o1": until.order_events,
            "w0": since.webhook_events,
            "w1": until.webhook_events,
        },
    ).fetchall()
    return {str(row[0]) for row in rows}


def stale_raw_rows(
    conn: psycopg.Connection[Any], processed: RawHighWater, *, older_than_seconds: float
) -> tuple[int, float | None]:
    """Raw rows above `processed` received more than `older_than_seconds` ago: how many,
    and the age in seconds of the oldest."""
    row = conn.execute(
        """
        with waiting as (
            select received_at from raw.order_events where id > %(o)s
            union all
            select received_at from raw.webhook_events where id > %(w)s
        )
        select count(*), extract(epoch from now() - min(received_at))::float8
        from waiting
        where received_at < now() - make_interval(secs => %(age)s)
        """,
        {"o": processed.order_events, "w": processed.webhook_events, "age": older_than_seconds},
    ).fetchone()
    assert row is not None
    return int(row[0]), (float(row[1]) if row[1] is not None else None)
