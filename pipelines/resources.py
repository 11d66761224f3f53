"""Resources: the PostgreSQL store of record, and dbt pointed at it."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping, Sequence
from functools import cached_property
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import sqlalchemy as sa
from dagster_dbt import DbtCliInvocation, DbtCliResource
from packaging.version import Version
from pydantic import Field

from partner_signals.db import get_engine, libpq_url, to_libpq
from partner_signals.settings import Settings, get_settings
from pipelines.project import DBT_PROJECT_DIR, dbt_env, patched_environ


class DatabaseResource(dg.ConfigurableResource):
    """The PostgreSQL database holding raw, ops and the dbt schemas.

    Unset `database_url` means the project's own settings: DATABASE_URL or the embedded
    server. The URL is never shown in the UI unless set here explicitly (tests, CLI).
    """

    database_url: str | None = Field(
        default=None, description="libpq URL; unset: DATABASE_URL or the embedded server"
    )

    def url(self) -> str:
        if self.database_url:
            return to_libpq(self.database_url)
        return libpq_url(get_settings())

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url(), **kwargs)

    def engine(self) -> sa.Engine:
        """The project's SQLAlchemy engine on this database (what the core functions take)."""
        settings = get_settings()
        return get_engine(Settings(database_url=self.url(), data_dir=settings.data_dir))


class ExportsResource(dg.ConfigurableResource):
    """Where the exported files are written (what `/v1/exports` lists)."""

    exports_dir: str | None = Field(
        default=None, description="folder; unset: PARTNER_SIGNALS_EXPORTS_DIR or <data_dir>/exports"
    )

    def root(self) -> Path:
        return Path(self.exports_dir) if self.exports_dir else Path(get_settings().exports_dir)


def signals_dbt_resource(artifacts_dir: str | None = None) -> SignalsDbtResource:
    """dbt on the signals project, with the dbt beside this Python."""
    return SignalsDbtResource(
        project_dir=str(DBT_PROJECT_DIR),
        profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=dbt_executable(),
        artifacts_dir=artifacts_dir,
    )


def dbt_executable() -> str:
    """The dbt installed beside this Python (the venv need not be on PATH)."""
    beside = Path(sys.executable).with_name("dbt")
    if beside.exists():
        return str(beside)
    return shutil.which("dbt") or "dbt"


class SignalsDbtResource(DbtCliResource):
    """dbt for the signals project: connects to the database resource's server and keeps
    its artifacts (and partial-parse state) in one directory per data dir."""

    artifacts_dir: str | None = Field(
        default=None, description="dbt target/log directory; unset: <data_dir>/dbt/target"
    )

    @cached_property
    def _cli_version(self) -> Version:
        """dbt-core's version, read from this environment's package metadata. The base
        class asks the executable (`dbt --version`, a new Python importing dbt: 2.3 s
        of every run, measured) when the executable is the one beside this Python."""
        if Path(self.dbt_executable).parent != Path(sys.executable).parent:
            return DbtCliResource._cli_version.func(self)  # type: ignore[attr-defined]
        return Version(package_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        """No in-process dbt adapter: dagster-dbt builds one for every invocation (about
        1 s, measured) only to fetch column metadata, which these assets do not ask for.
        Without it the invocation runs as it does for dbt Fusion."""
        return None

    def target_dir(self) -> Path:
        if self.artifacts_dir:
            return Path(self.artifacts_dir)
        return (get_settings().data_dir / "dbt" / "target").resolve()

    def invoke(
        self,
        args: Sequence[str],
        *,
        database: DatabaseResource,
        context: dg.AssetExecutionContext | None = None,
        raise_on_error: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> DbtCliInvocation:
        """Start dbt with the profile pointed at `database` (and `env` on top); stream or
        wait on the result."""
        target = self.target_dir()
        target.mkdir(parents=True, exist_ok=True)
        # dbt reads its profile from the environment when the process starts.
        with patched_environ({**dbt_env(database.url()), **(env or {})}):
            return self.cli(
                list(args), context=context, target_path=target, raise_on_error=raise_on_error
            )
