"""The executable's entry: `ingest FILE` starts without the other commands' imports."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
sys.argv = ["partner-signals", *sys.argv[1:]]
from cli.entry import main
try:
    main()
except SystemExit:
    pass
print("LOADED", "cli.main" in sys.modules, "sqlalchemy" in sys.modules)
"""


def loaded(*args: str) -> tuple[str, str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("LOADED"))
    return line, out.stdout


def test_ingest_starts_without_the_other_commands() -> None:
    line, text = loaded("ingest", "--help")
    assert line == "LOADED False False"
    assert "partner-signals ingest" in text
    assert "--company" in text


def test_every_other_command_goes_through_the_whole_command_line() -> None:
    line, text = loaded("--help")
    assert line.startswith("LOADED True")
    assert "ingest" in text
    assert "serve" in text
