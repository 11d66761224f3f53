"""Command-line options derived from the adapters' declared fields, for `integrations enable`.

Every adapter declares its config and secret fields (partner_signals/adapters/config.py);
this module turns the union of those declarations into Typer options, merging a flag two
adapters share (`--url`), and turns the values given back into one adapter's (config,
secrets). No adapter is named here.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from partner_signals.adapters import ADAPTERS, Adapter
from partner_signals.adapters.config import FieldSpec


def read_secret(value: str | None) -> str | None:
    """'-' means the secret comes on standard input, so it stays out of shell history."""
    if value == "-":
        return sys.stdin.readline().strip() or None
    return value


@dataclass
class AdapterOption:
    """One option of `integrations enable`, and which field of which adapter it fills."""

    flag: str
    number: bool
    stdin: bool
    envvar: str | None
    fields: dict[str, FieldSpec] = field(default_factory=dict)  # adapter name -> its field

    @property
    def param(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    def help(self) -> str:
        """Which adapters take it and what it is to each, in the adapters' own words."""
        by_text: dict[str, list[str]] = {}
        for adapter, spec in self.fields.items():
            by_text.setdefault(spec.description, []).append(adapter)
        if len(by_text) == 1 and len(self.fields) == len(ADAPTERS):
            text = f"Adapters: {next(iter(by_text))}"
        else:
            text = "; ".join(f"{', '.join(names)}: {d}" for d, names in by_text.items())
        return text + (" ('-' reads standard input)" if self.stdin else "")


def adapter_options(adapters: Mapping[str, Adapter] = ADAPTERS) -> list[AdapterOption]:
    """The union of every adapter's fields as options; a shared flag must mean one kind."""
    options: dict[str, AdapterOption] = {}
    for adapter in adapters.values():
        for spec in adapter.fields():
            shape = (spec.kind == "number", spec.cli.stdin, spec.cli.envvar)
            option = options.setdefault(spec.flag, AdapterOption(spec.flag, *shape))
            if (option.number, option.stdin, option.envvar) != shape:
                raise TypeError(
                    f"{adapter.name} declares {spec.flag} unlike "
                    f"{', '.join(option.fields)} (type, stdin or env var differ)"
                )
            option.fields[adapter.name] = spec
    return list(options.values())


def with_adapter_options(
    command: Callable[..., Any], before: list[inspect.Parameter], after: list[inspect.Parameter]
) -> Callable[..., Any]:
    """`command` with a signature Typer reads: `before`, one option per adapter option
    (default None), then `after`. Typer calls it with every value as a keyword."""
    params = list(before)
    for option in adapter_options():
        kind: Any = float | None if option.number else str | None
        annotation = Annotated[
            kind, typer.Option(option.flag, help=option.help(), envvar=option.envvar)
        ]
        params.append(
            inspect.Parameter(
                option.param, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
            )
        )
    params += after
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def adapter_settings(
    adapter: str, values: Mapping[str, Any], *, previous: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, secrets) of one adapter from the option values given. Options it does not
    declare are ignored, as an env var meant for another adapter would be. `previous` is
    the integration's current secrets: a list secret that declares `keep` (webhook signing
    secrets) puts the new value first and keeps that many of the old ones after it."""
    config: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    for option in adapter_options():
        spec = option.fields.get(adapter)
        if spec is None:
            continue
        value = values.get(option.param)
        if spec.cli.stdin:
            value = read_secret(value)
        if spec.secret and spec.kind == "list":
            current = [value] if value else []
            kept = [s for s in previous.get(spec.name, []) if s not in current]
            value = current + kept[: spec.cli.keep]
        elif spec.kind == "list" and value:
            value = sorted({item.strip() for item in value.split(",") if item.strip()})
        if value is None or value == "" or (spec.secret and not value):
            continue
        (secrets if spec.secret else config)[spec.name] = value
    return config, secrets
