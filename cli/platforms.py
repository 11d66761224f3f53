"""Command-line commands: two-way delivery platforms: external orders, webhook registration, the sync log."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Mount this module's commands and groups on the root `partner-signals` app."""
