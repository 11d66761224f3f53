"""The embedded PostgreSQL (pgserver) used when DATABASE_URL is unset."""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

from filelock import FileLock

log = logging.getLogger(__name__)


def embedded_url(data_dir: Path) -> str:
    """Start (or reuse) the embedded server under data_dir/pg and return its libpq URI."""
    os.environ.setdefault(
        "XDG_RUNTIME_DIR", str(Path(tempfile.gettempdir()) / f"runtime-{os.getuid()}")
    )
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    pgdata = (data_dir / "pg").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process and the next one reuses it.
    # One starter at a time: processes that start together (test workers, the daemon
    # beside the webserver) would otherwise both run initdb into the same directory.
    with FileLock(str(pgdata.parent / "pg.lock")):
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    uri: str = server.get_uri()
    log.debug("embedded PostgreSQL at %s", pgdata)
    return uri
