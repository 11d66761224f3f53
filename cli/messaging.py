"""Command-line commands: guest and staff messaging: templates per restaurant, opt-ins and opt-outs."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Mount this module's commands and groups on the root `partner-signals` app."""
