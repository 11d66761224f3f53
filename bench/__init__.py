"""The benchmarks (`make bench` runs each; see docs/benchmarks.md) and the harness they share."""
