"""How far each reader of canonical_events has got (ops.canonical_readers), kept in the
database so a reader continues where it stopped whoever runs it: a sensor, the CLI, the UI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

OUTBOX = "outbox"  # canonical events enqueued for partners up to here
EXPORTS = "exports"  # business days of the events up to here written to files


@dataclass(frozen=True)
class Position:
    """A place in canonical_events' (loaded_at, id::text) order; `event_id` empty means
    "every event loaded at or before `loaded_at`"."""

    loaded_at: datetime
    event_id: str = ""

    def as_cursor(self) -> str:
        """The "<loaded_at ISO>|<id>" cursor of enqueue_new_canonical_events."""
        return f"{self.loaded_at.isoformat()}|{self.event_id}"

    @classmethod
    def from_cursor(cls, cursor: str | None) -> Position | None:
        if not cursor:
            return None
        at, _, event_id = cursor.partition("|")
        try:
            loaded_at = datetime.fromisoformat(at)
        except ValueError:
            raise ValueError(f"not a canonical events cursor: {cursor!r}") from None
        if loaded_at.tzinfo is None:
            raise ValueError(f"canonical events cursor without a time zone: {cursor!r}")
        return cls(loaded_at, event_id)


def read_position(conn: sa.Connection, reader: str) -> Position | None:
    """Where `reader` stopped; None before its first run (or before migration 0009)."""
    if conn.execute(sa.text("select to_regclass('ops.canonical_readers')")).scalar() is None:
        return None
    row = conn.execute(
        sa.text("select loaded_at, event_id from ops.canonical_readers where reader = :r"),
        {"r": reader},
    ).first()
    return Position(row[0], row[1] or "") if row else None


def save_position(conn: sa.Connection, reader: str, position: Position) -> None:
    """Move `reader` forward to `position`; never back (two runs can overlap, and the one
    that read less may finish last)."""
    conn.execute(
        sa.text(
            """
            insert into ops.canonical_readers as r (reader, loaded_at, event_id)
            values (:r, :at, :id)
            on conflict (reader) do update
                set loaded_at = excluded.loaded_at, event_id = excluded.event_id,
                    updated_at = now()
                where (r.loaded_at, coalesce(r.event_id, ''))
                    < (excluded.loaded_at, coalesce(excluded.event_id, ''))
            """
        ),
        {"r": reader, "at": position.loaded_at, "id": position.event_id},
    )
