"""Prometheus metrics of the ingest API (multi-process aware under uvicorn --workers)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

# Labels are fixed small sets (source, outcome, status): never ids, keys or secrets.
EVENTS = Counter(
    "partner_signals_ingest_events_total",
    "Inbound events by source and outcome (new, duplicate)",
    ["source", "outcome"],
)
# The hottest label pair, bound once.
POS_ACCEPTED = EVENTS.labels("pos", "accepted")
POS_DUPLICATE = EVENTS.labels("pos", "duplicate")
REJECTED = Counter(
    "partner_signals_ingest_rejected_total",
    "Refused requests by source and HTTP status",
    ["source", "status"],
)
REJECTIONS_NOT_RECORDED = Counter(
    "partner_signals_ingest_rejections_not_recorded_total",
    "Refused requests answered but not written to raw.rejected_requests (over the log rate)",
    ["source"],
)
UNAVAILABLE = Counter(
    "partner_signals_ingest_unavailable_total",
    "Requests answered 503 because the database did not commit",
    ["source"],
)
BACKPRESSURE = Counter(
    "partner_signals_ingest_backpressure_total",
    "Requests refused (503, not committed) before their commit started, by reason "
    "(queue_full, database_slow, not_started)",
    ["reason"],
)
COMMIT_ROWS = Histogram(
    "partner_signals_ingest_commit_rows",
    "Rows per group commit",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
)
COMMIT_SECONDS = Histogram(
    "partner_signals_ingest_commit_seconds",
    "Time of one group commit (insert and commit)",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
