"""What one materialization of the outbox asset does: new canonical events, changed signal
values and unpaid-bill nudges into ops.outbox, and what it reports about them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from partner_signals.pushes.outbox import (
    enqueue_events_after_saved_position,
    enqueue_unpaid_bill_nudges,
)
from pipelines.pushes.signals import enqueue_signal_changes


@dataclass(frozen=True)
class OutboxFill:
    events_read: int
    events_queued: int
    events_up_to: str | None
    more_events_waiting: bool
    signal_values_queued: int | None  # None: not rechecked this time
    nudges_queued: int
    pending: int

    def as_metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "canonical_events_read": self.events_read,
            "event_messages_queued": self.events_queued,
            "events_enqueued_up_to": self.events_up_to or "none yet",
            "more_events_waiting": self.more_events_waiting,
            "nudges_queued": self.nudges_queued,
            "pending_in_outbox": self.pending,
        }
        if self.signal_values_queued is not None:
            metadata["signal_values_queued"] = self.signal_values_queued
        return metadata

    def line(self) -> str:
        signals = (
            "signals not rechecked"
            if self.signal_values_queued is None
            else f"{self.signal_values_queued} signal values"
        )
        return (
            f"{self.events_queued} event messages from {self.events_read} new events, "
            f"{signals}, {self.nudges_queued} nudges queued; {self.pending} pending"
        )


def fill_outbox(engine: sa.Engine, *, now: datetime, recheck_signals: bool) -> OutboxFill:
    """Queue what partners should be sent: the canonical events loaded since the outbox's
    saved position, the watched signals' values that changed since each partner was last
    sent one (when `recheck_signals`: it reads every pushed mart's recent rows), and
    nudges for bills left unpaid. Each part is idempotent."""
    events = enqueue_events_after_saved_position(engine)
    signal_values = None
    if recheck_signals:
        with engine.begin() as conn:
            signal_values = enqueue_signal_changes(conn)
    with engine.begin() as conn:
        nudges = enqueue_unpaid_bill_nudges(conn, now=now)
    with engine.connect() as conn:
        pending: int = conn.execute(
            sa.text("select count(*) from ops.outbox where status = 'pending'")
        ).scalar_one()
    return OutboxFill(
        events_read=events.read,
        events_queued=events.queued,
        events_up_to=events.cursor,
        more_events_waiting=events.more,
        signal_values_queued=signal_values,
        nudges_queued=nudges,
        pending=int(pending),
    )
