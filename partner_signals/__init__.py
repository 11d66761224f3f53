"""Shared core of partner-signals: settings, database, crypto, providers and event models."""

__version__ = "0.1.0"
