"""The command line's two consoles and its one-line refusal, light enough for any command to import."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.text import Text

console = Console(stderr=True)
out = Console()


def fail(message: object, code: int = 1) -> typer.Exit:
    """One line on standard error, `error: ...`, whatever the message holds (line breaks
    folded, brackets printed as they are, never wrapped), and the exit to raise."""
    console.print(
        Text.assemble(("error:", "red"), " ", " ".join(str(message).split())), soft_wrap=True
    )
    return typer.Exit(code)
