"""The command line's errors: whatever a command raises becomes one `error: ...` line on
standard error and exit 1, never a traceback, unless `--debug` or PARTNER_SIGNALS_DEBUG=1."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from urllib.parse import urlsplit

DEBUG_ENV = "PARTNER_SIGNALS_DEBUG"
HINT = f"(--debug or {DEBUG_ENV}=1 shows the traceback)"


class CliError(Exception):
    """A refusal of the command line itself, printed as it is (a busy port on serve)."""


class _Debug:
    on = False


def set_debug(on: bool) -> None:
    _Debug.on = _Debug.on or on


def debugging() -> bool:
    return _Debug.on or os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes"}


def database_address() -> str:
    """host:port of the configured database, never its user or password."""
    url = os.environ.get("DATABASE_URL") or os.environ.get("PARTNER_SIGNALS_DATABASE_URL")
    if not url:
        return "the embedded database"
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "localhost", parts.port or 5432
    except ValueError:
        return "the database of DATABASE_URL"
    return f"the database at {host}:{port}"


def _without_secrets(text: str) -> str:
    url = os.environ.get("DATABASE_URL") or os.environ.get("PARTNER_SIGNALS_DATABASE_URL") or ""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        text = text.replace(password, "***")
    return text


def _database_reason(exc: BaseException) -> str:
    """The driver's reason, its last clause of the first line ("Connection refused")."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0]
    reason = first.rsplit("failed: ", 1)[-1].strip()
    return _without_secrets(reason) or type(orig).__name__


def _field(loc: tuple[int | str, ...], settings: bool) -> str:
    name = ".".join(str(p) for p in loc)
    return f"PARTNER_SIGNALS_{name.upper()}" if settings else name


def message(exc: BaseException) -> str:
    """The one line that says what went wrong and what to do about it."""
    import psycopg
    import sqlalchemy as sa
    from pydantic import ValidationError

    from partner_signals.control.errors import ControlError
    from partner_signals.crypto import DecryptionError

    if isinstance(exc, CliError | ControlError):
        return str(exc)
    if isinstance(exc, DecryptionError):
        return (
            f"{exc}: PARTNER_SIGNALS_SECRET_KEY (or the key file under the data dir) is not "
            "the key the stored credentials were encrypted with"
        )
    if isinstance(exc, ValidationError):
        # Each bad field by name with pydantic's reason, never the value given (a key).
        settings = exc.title == "Settings"
        problems = "; ".join(
            str(e["msg"]).removeprefix("Value error, ")
            if "PARTNER_SIGNALS_" in str(e["msg"])
            else f"{_field(e['loc'], settings)}: {e['msg']}"
            for e in exc.errors()
        )
        return f"invalid {'settings' if settings else 'value'}: {problems}"
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError | psycopg.OperationalError):
        return f"cannot reach {database_address()}: {_database_reason(exc)}"
    if isinstance(exc, sa.exc.DBAPIError):
        return f"the database refused: {_database_reason(exc)}"
    return f"{type(exc).__name__}: {_without_secrets(str(exc)) or 'unexpected error'} {HINT}"


def run(app: Callable[[], object]) -> None:
    """Run the root command; an exception becomes one line and exit 1."""
    try:
        app()
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        if debugging():
            raise
        print("error: " + " ".join(message(exc).split()), file=sys.stderr)
        sys.exit(1)
