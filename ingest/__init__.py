"""The thin ingest API: verify, name, and append inbound events to raw.* tables."""
