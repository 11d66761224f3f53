"""Prometheus metrics of pushes: per-adapter outcomes and latency (labels never carry ids)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DELIVERIES = Counter(
    "partner_signals_deliveries_total",
    "Delivery attempts by adapter and outcome (delivered, retry, deferred, failed, gone)",
    ["adapter", "outcome"],
)
DEAD_LETTERS = Counter(
    "partner_signals_dead_letters_total",
    "Deliveries moved to the dead letter table, by adapter and fault (partner, ours)",
    ["adapter", "fault"],
)
LATENCY = Histogram(
    "partner_signals_delivery_seconds",
    "Time of one delivery request, answer or not",
    ["adapter"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
RECLAIMED = Counter(
    "partner_signals_push_claims_reclaimed_total",
    "Outbox rows claimed while still naming another worker: that worker died (or stalled "
    "past its lease) holding them, so the partner may get them a second time",
    ["adapter"],
)
