"""The one dbt project: where it lives, how its manifest is kept current, how dbt connects."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from dagster_dbt import DbtProject
from filelock import FileLock
from psycopg.conninfo import conninfo_to_dict

from partner_signals.catalogue import DBT_PROJECT_DIR

# profiles.yml reads these; pipelines sets them from the project's libpq URL.
DBT_ENV_PREFIX = "PARTNER_SIGNALS_DBT_"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_env(url: str, *, threads: int = 4) -> dict[str, str]:
    """The environment that points profiles.yml at `url` (a libpq URI or key=value string).

    Works for TCP hosts and for a unix socket directory given as `?host=/dir`.
    """
    params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    return {
        f"{DBT_ENV_PREFIX}HOST": params.get("host", "localhost"),
        f"{DBT_ENV_PREFIX}PORT": params.get("port", "5432"),
        f"{DBT_ENV_PREFIX}USER": params.get("user", os.environ.get("USER", "postgres")),
        f"{DBT_ENV_PREFIX}PASSWORD": params.get("password", ""),
        f"{DBT_ENV_PREFIX}DBNAME": params.get("dbname", "postgres"),
        f"{DBT_ENV_PREFIX}SSLMODE": params.get("sslmode", "prefer"),
        f"{DBT_ENV_PREFIX}THREADS": str(threads),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
        # PostgreSQL's JIT compiles a plan once its estimated cost passes
        # jit_above_cost; the models' CTE-heavy plans always do, and compiling them
        # cost 0.7 s of a 25 ms incremental fct_order_velocity query (measured).
        "PGOPTIONS": f"{os.environ.get('PGOPTIONS', '')} -c jit=off".strip(),
    }


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block (dbt reads os.environ)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _newest_source_mtime(project_dir: Path) -> float:
    newest = 0.0
    for sub in ("models", "macros", "tests"):
        for path in (project_dir / sub).rglob("*"):
            if path.suffix in {".sql", ".yml", ".yaml", ".md"}:
                newest = max(newest, path.stat().st_mtime)
    for name in ("dbt_project.yml", "profiles.yml"):
        newest = max(newest, (project_dir / name).stat().st_mtime)
    return newest


def manifest_is_stale(project: DbtProject = dbt_project) -> bool:
    manifest = project.manifest_path
    if not manifest.exists():
        return True
    return manifest.stat().st_mtime < _newest_source_mtime(Path(project.project_dir))


def ensure_manifest(project: DbtProject = dbt_project) -> Path:
    """Run `dbt parse` when the manifest is missing or older than the project's files.

    A clean checkout then loads without a manual step, and an edited model is picked up
    by the next load (`dagster dev` reloads, the CLI, tests).
    """
    if not manifest_is_stale(project):
        return project.manifest_path
    # One parse at a time per checkout: processes that load at once (test workers, the
    # daemon beside the webserver) would otherwise write the same target files together.
    lock = Path(project.project_dir) / "target" / ".parse.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock)):
        if manifest_is_stale(project):  # unless another process parsed while this waited
            with patched_environ({"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}):
                project.preparer.prepare(project)
    return project.manifest_path
