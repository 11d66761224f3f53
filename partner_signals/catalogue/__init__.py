"""Catalogues: each concept (signal, inbound source) declared once, in the dbt project's yml.

dbt's yml is the definition (the model and its yml are one thing); this package is the
Python view of it, read straight from the yml files so that ingest and the partner API
need no dbt manifest. A test checks each view against the manifest.
"""

from pathlib import Path

# The dbt project beside the packages; pipelines/project.py builds dagster-dbt's on it.
DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
