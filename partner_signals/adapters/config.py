"""What an adapter is configured with: typed config and secret models, and how the CLI offers them.

Each adapter declares two pydantic models: its config (stored as JSON, safe to show) and
its secrets (sealed with AES-256-GCM, never printed). A field's description and its `Cli`
marker are all that `integrations enable` needs to offer it as an option, so adding a
field is one line in the adapter's module.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo

if TYPE_CHECKING:
    from partner_signals.adapters.base import Adapter


@dataclass(frozen=True)
class Cli:
    """How `integrations enable` offers one field (put it in the field's `Annotated`)."""

    flag: str | None = None  # the option, when it is not --<field-name-with-dashes>
    stdin: bool = False  # '-' reads the value from standard input (keeps it out of history)
    envvar: str | None = None  # an environment variable may supply it instead
    keep: int = 0  # list secrets: --keep-previous keeps up to this many old values


class AdapterConfig(BaseModel):
    """Config every adapter takes. Stored as JSON in ops.integrations: never put a secret here."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    events: Annotated[
        list[str] | None,
        Field(description="Event types to push (comma-separated; default: all it offers)"),
    ] = None
    signals: Annotated[
        list[str] | None,
        Field(description="Signals to push (comma-separated; default: all it offers)"),
    ] = None

    @field_validator("events", "signals")
    @classmethod
    def _offered(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        adapter: Adapter | None = (info.context or {}).get("adapter")
        if value is None or adapter is None:
            return value
        allowed = adapter.event_types if info.field_name == "events" else adapter.signals
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ValueError(
                f"{adapter.name} cannot subscribe to {', '.join(unknown)}; "
                f"it offers {', '.join(sorted(allowed)) or 'nothing'}"
            )
        return value


class AdapterSecrets(BaseModel):
    """Credentials of an adapter: sealed at rest; validation errors never echo a value."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


def check_url(value: Any, name: str) -> str:
    """An http(s) URL without credentials in it, else ValueError naming the field."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} is required")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an http(s) URL")
    if parts.username or parts.password:
        # Credentials in a URL end up in logs and error text; they belong in the secrets.
        raise ValueError(f"{name} must not carry a user or password")
    return value


def check_whsec(value: Any, *, at_most: int) -> list[str]:
    """1 to `at_most` Standard Webhooks secrets (whsec_ + base64 of at least 24 bytes)."""
    if not isinstance(value, list) or not 1 <= len(value) <= at_most:
        raise ValueError(f"webhook needs 1 to {at_most} signing secrets")
    for item in value:
        if not isinstance(item, str) or not item.startswith("whsec_"):
            raise ValueError("webhook secrets look like whsec_<base64>")
        try:
            raw = binascii.a2b_base64(item.removeprefix("whsec_") + "==")
        except binascii.Error:
            raise ValueError("webhook secret is not valid base64") from None
        if len(raw) < 24:
            raise ValueError("webhook secret must carry at least 24 random bytes")
    return value


def adapter_name(info: ValidationInfo, default: str = "adapter") -> str:
    adapter: Adapter | None = (info.context or {}).get("adapter")
    return adapter.name if adapter is not None else default


@dataclass(frozen=True)
class FieldSpec:
    """One declared field, flattened for the CLI and `integrations adapters`."""

    name: str  # the key in the stored config or secrets
    description: str
    required: bool
    secret: bool
    kind: Literal["text", "number", "list"]
    cli: Cli

    @property
    def flag(self) -> str:
        return self.cli.flag or "--" + self.name.replace("_", "-")


def _kind(info: FieldInfo) -> Literal["text", "number", "list"]:
    annotation = info.annotation
    options = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else ()
    for option in options or (annotation,):
        if option is list or get_origin(option) is list:
            return "list"
        if option in (int, float):
            return "number"
    return "text"


def field_specs(model: type[BaseModel], *, secret: bool) -> list[FieldSpec]:
    specs = []
    for name, info in model.model_fields.items():
        marker = next((m for m in info.metadata if isinstance(m, Cli)), Cli())
        specs.append(
            FieldSpec(
                name=info.alias or name,
                description=info.description or "",
                required=info.is_required(),
                secret=secret,
                kind=_kind(info),
                cli=marker,
            )
        )
    return specs


def check_model(
    model: type[BaseModel], data: Mapping[str, Any], *, adapter: Adapter, secret: bool
) -> list[str]:
    """The reasons `data` does not fit `model`, worded for an operator; never a value."""
    try:
        model.model_validate(dict(data), context={"adapter": adapter})
    except ValidationError as exc:
        return [_reason(error, adapter.name, secret) for error in exc.errors(include_input=False)]
    return []


def _reason(error: Any, adapter: str, secret: bool) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "?"
    kind = error["type"]
    if kind == "missing":
        return f"{adapter} needs {field}" if secret else f"{field} is required"
    if kind == "extra_forbidden":
        return f"{adapter} has no {'secret' if secret else 'config'} field {field}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return f"{field}: {error['msg']}"
