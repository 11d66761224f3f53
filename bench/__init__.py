"""Ingest benchmark: `make bench` (see docs/benchmarks.md)."""
