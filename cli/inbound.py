"""Command-line commands for the inbound part of the control plane (see register)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Mount this module's commands and groups on the root `partner-signals` app."""
