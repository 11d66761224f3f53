"""The embedded PostgreSQL (pgserver) used when DATABASE_URL is unset."""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

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
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    uri: str = server.get_uri()
    log.debug("embedded PostgreSQL at %s", pgdata)
    return uri
