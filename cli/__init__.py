"""The application shell above ingest, api and pipelines: command line, demo, serve."""
