"""Pushes to partners: canonical events and signal changes moved into the outbox."""
