"""Pushes to partners (outbound): outbox enqueue, the worker, retries, dead letters, replay."""

from __future__ import annotations

from partner_signals.pushes.outbox import (
    enqueue_events,
    enqueue_new_canonical_events,
    enqueue_signal,
    enqueue_unpaid_bill_nudges,
)
from partner_signals.pushes.policy import RetryPolicy
from partner_signals.pushes.replay import ReplayResult, adapter_counts, replay_dead_letters
from partner_signals.pushes.worker import (
    RunSummary,
    WorkerOptions,
    deliver_due,
    deliver_due_sync,
)

__all__ = [
    "ReplayResult",
    "RetryPolicy",
    "RunSummary",
    "WorkerOptions",
    "adapter_counts",
    "deliver_due",
    "deliver_due_sync",
    "enqueue_events",
    "enqueue_new_canonical_events",
    "enqueue_signal",
    "enqueue_unpaid_bill_nudges",
    "replay_dead_letters",
]
