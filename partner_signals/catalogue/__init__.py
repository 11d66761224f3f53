"""Catalogues: each concept (signal, inbound source) declared once, in the dbt project's yml.

dbt's yml is the definition (the model and its yml are one thing); this package is the
Python view of it, read straight from the yml files so that ingest and the partner API
need no dbt manifest. A test checks each view against the manifest.
"""

from functools import cache
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no stubs in the lock; safe_load only

# The dbt project beside the packages; pipelines/project.py builds dagster-dbt's on it.
DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"


@cache
def dbt_vars() -> dict[str, Any]:
    """The dbt project's vars (dbt_project.yml), e.g. business_day_start_hours."""
    document = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text()) or {}
    return dict(document.get("vars") or {})
