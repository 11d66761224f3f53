"""Dagster definitions for partner-signals: dbt assets, exports, deliveries."""

import os
import sys
from pathlib import Path

# dagster-dbt looks for `dbt` on PATH when it prepares the manifest; the one installed
# beside this Python is ours, even when the virtual environment is not activated.
_bin = str(Path(sys.executable).parent)
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join([_bin, os.environ.get("PATH", "")])
