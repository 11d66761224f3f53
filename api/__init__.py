"""The read-only partner API: signals, exports and the canonical event stream."""
