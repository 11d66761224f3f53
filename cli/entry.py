"""The `partner-signals` executable: `ingest FILE` starts on its own, every other command
through the whole command line (`cli.main`)."""

from __future__ import annotations

import sys


def main() -> None:
    # A backfill's start is part of its time: the whole command line imports every
    # group (SQLAlchemy, the adapters, the delivery and pipeline commands), about 1.5 s,
    # where `ingest` alone needs 0.7 s (docs/benchmarks.md, issue 16).
    if sys.argv[1:2] == ["ingest"]:
        import typer

        from cli import backfill, errors

        app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)
        app.command()(backfill.ingest)
        errors.run(lambda: app(args=sys.argv[2:], prog_name="partner-signals ingest"))
        return
    from cli.main import main as whole

    whole()
