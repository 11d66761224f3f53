"""Settings for every process, read once from the environment (prefix PARTNER_SIGNALS_)."""

from __future__ import annotations

import base64
import os
import secrets
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDERS = {"", "changeme", "change-me", "secret", "placeholder", "xxx", "todo"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARTNER_SIGNALS_", extra="ignore")

    # Unset: an embedded PostgreSQL (pgserver) under data_dir/pg, started on demand.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "PARTNER_SIGNALS_DATABASE_URL")
    )
    data_dir: Path = Path(".data")
    # base64 of 32 bytes: the AES-256-GCM key for credentials at rest. Unset: a key file
    # under data_dir is made once (fine for a laptop; set it explicitly in production).
    secret_key: str | None = None
    max_body_bytes: int = 1024 * 1024
    # What a sender controls before a handler runs (docs/bad-input.md, "Limits"), for every
    # server `processes.uvicorn_cmd` starts (partner_signals.http_limits). A request head
    # over a limit is answered 414 (request target) or 431 (headers) and the connection
    # closed; the app never sees it and nothing is written.
    http_max_url_bytes: int = 2048
    http_max_header_count: int = 100
    # Names and values of all header fields together.
    http_max_header_bytes: int = 16 * 1024
    # From a request's first byte to the end of its headers: past it, 408 and close.
    http_header_timeout_seconds: float = 10.0
    # From the handler's first read to the body's last byte: past it, 408 and close.
    http_body_timeout_seconds: float = 30.0
    # A connection with no request under way (new, or kept alive after an answer) is
    # closed after this long; uvicorn's keep-alive timeout, applied from the connect too.
    http_idle_timeout_seconds: float = 5.0
    # The most events one POST /events batch may carry (non-blank NDJSON lines): a longer
    # batch is refused whole with 413, before any line is parsed. At ~200 bytes an event,
    # a 1 MiB body holds about 5,000.
    ingest_max_batch_events: int = 5000
    stripe_tolerance_seconds: int = 300
    signature_tolerance_seconds: int = 300
    # Ingest group commit: the most rows one transaction takes.
    ingest_batch_max: int = 2000
    # Ingest backpressure, per worker: the most rows waiting for a commit, how long a
    # request waits for its commit to start (then 503, not committed), and PostgreSQL's
    # statement_timeout for one commit (past it the commit is rolled back: 503).
    ingest_queue_max_rows: int = 50_000
    ingest_commit_wait_seconds: float = 2.0
    ingest_commit_timeout_seconds: float = 5.0
    # Per (company, source) and per ingest worker: sustained events/s and burst (a request
    # costs one token per event it holds, at least one). Refused requests are recorded at
    # most this often per source, so a flood of bad signatures cannot turn into a flood
    # of writes.
    ingest_rate_per_second: float = 20_000.0
    ingest_rate_burst: int = 40_000
    rejections_recorded_per_second: float = 50.0
    # The occurred_at a POS event may carry: from this instant to now plus this many
    # seconds (clock skew and time zones); outside it the event is refused with 422.
    occurred_at_earliest: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    occurred_at_max_ahead_seconds: float = 86_400.0
    # How long cached company secrets and ingest keys are trusted before re-reading.
    auth_cache_seconds: float = 10.0
    # How often each ingest and partner API worker writes its keys' last use (batched).
    key_usage_seconds: float = 15.0
    # Unset: data_dir/exports.
    exports_dir: Path = Path(".data/exports")
    # Partner API: per-key token bucket (requests per second, burst size).
    api_rate_per_second: float = 50.0
    api_rate_burst: int = 100
    # A restaurant's signals are computed at most this often per API worker; concurrent
    # partners share the result. 0 computes every request.
    api_snapshot_seconds: float = 1.0
    dbt_target_schema: str = "analytics"
    # Push worker: a claimed outbox row is leased to its worker for this long, and the
    # worker renews the leases of the rows it still holds this often (a heartbeat). A
    # worker that dies leaves its claims for at most one lease; a live one keeps them
    # however long a slow partner makes them wait.
    push_lease_seconds: float = 30.0
    push_lease_renew_seconds: float = 10.0

    @field_validator("secret_key")
    @classmethod
    def _not_placeholder(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.strip().lower() in PLACEHOLDERS:
            raise ValueError("PARTNER_SIGNALS_SECRET_KEY is a placeholder; set a real key")
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError as exc:
            raise ValueError("PARTNER_SIGNALS_SECRET_KEY must be base64") from exc
        if len(raw) != 32:
            raise ValueError("PARTNER_SIGNALS_SECRET_KEY must decode to 32 bytes (AES-256)")
        return value

    @model_validator(mode="after")
    def _renew_within_lease(self) -> Settings:
        if not 0 < self.push_lease_renew_seconds < self.push_lease_seconds:
            raise ValueError(
                "PARTNER_SIGNALS_PUSH_LEASE_RENEW_SECONDS must be above 0 and below "
                "PARTNER_SIGNALS_PUSH_LEASE_SECONDS, or leases lapse while their worker lives"
            )
        return self

    @model_validator(mode="after")
    def _exports_under_data_dir(self) -> Settings:
        if "exports_dir" not in self.model_fields_set:
            self.exports_dir = self.data_dir / "exports"
        return self

    def master_key(self) -> bytes:
        """The 32-byte key that encrypts credentials; made once under data_dir when unset."""
        if self.secret_key:
            return base64.b64decode(self.secret_key)
        path = self.data_dir / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write aside, then link into place: concurrent workers agree on one key.
            tmp = path.with_name(f".secret.key.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(base64.b64encode(secrets.token_bytes(32)).decode())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return base64.b64decode(path.read_text().strip())


@lru_cache
def get_settings() -> Settings:
    return Settings()
