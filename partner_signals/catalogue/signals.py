"""The signal catalogue: each signal's name, mart, key and delivery, read from its mart's yml.

A signal is declared once, in the `config.meta.signal` block of its mart's yml
(dbt_project/models/marts/<group>/fct_*.yml), beside the column-by-column definition:

    config:
      meta:
        signal:
          name: order_velocity                 # the one name: API field, file, push type
          key: [interval_start]                # one value per restaurant and key
          span: {column: interval_start}       # the API's from/to (or window) filter
          served: {route: workforce, scope: read:workforce}
          exported: {day_column: business_date}
          pushed: {recent: "interval_start > now() - interval '2 days' and orders > 0"}
          watched: true
          headline:                            # the demo's per-restaurant figures
            - {label: orders, sql: "sum(orders)", format: count}

`served`, `exported` and `pushed` are omitted for a signal that is not delivered that
way. The partner API, the exported files, the pushes, the change watcher, the demo and
docs/signals.md all read this module; tests/pipelines checks it against the manifest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no stubs in the lock; safe_load only

from partner_signals.catalogue import DBT_PROJECT_DIR

MARTS_DIR = DBT_PROJECT_DIR / "models" / "marts"
MARTS_SCHEMA = "marts"
ROUTES = ("workforce", "crm")  # also the mart folders (groups), in the order shown
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class CatalogueError(ValueError):
    """A signal block in a mart's yml that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Served:
    route: str  # /v1/restaurants/{id}/<route>
    scope: str  # the partner key scope it needs


@dataclass(frozen=True)
class Span:
    """How a partner's from/to selects rows: a timestamp column in [from, to), or a
    business-day column from the day before `from` to the day of `to` (a day's rows
    belong to a request that overlaps any part of it, in any time zone)."""

    column: str
    kind: str = "timestamp"  # or "business_date"


@dataclass(frozen=True)
class Headline:
    """One figure that sums a signal up per restaurant (the demo's tables): a label, an
    aggregate over the mart's rows, and how to show it."""

    label: str
    sql: str
    format: str  # count, money, minutes (from seconds) or decimal


HEADLINE_FORMATS = ("count", "money", "minutes", "decimal")


@dataclass(frozen=True)
class Signal:
    name: str
    model: str  # the dbt model (mart) it is read from
    group: str  # workforce or crm: the mart's folder, the Dagster group
    description: str
    key: tuple[str, ...]
    span: Span
    order_by: tuple[str, ...]
    materialized: str  # table, incremental or view: how the mart is stored
    served: Served | None
    export_day_column: str | None
    push_recent: str | None  # SQL condition on the mart: the rows (re)checked for changes
    watched: bool
    headline: tuple[Headline, ...]
    yml: Path

    @property
    def relation(self) -> str:
        return f"{MARTS_SCHEMA}.{self.model}"

    @property
    def exported(self) -> bool:
        return self.export_day_column is not None

    @property
    def pushed(self) -> bool:
        return self.push_recent is not None

    @property
    def push_type(self) -> str:
        """The message type a partner receives: signal.<name>."""
        return f"signal.{self.name}"


def _require(mapping: dict[str, Any], field: str, where: str) -> Any:
    if field not in mapping or mapping[field] in (None, ""):
        raise CatalogueError(f"{where}: signal needs `{field}`")
    return mapping[field]


def _model_materialization(model: dict[str, Any], sql: Path) -> str:
    """The materialization a model declares: its yml config, its SQL config() call, or
    the marts' default (table, dbt_project.yml)."""
    declared = (model.get("config") or {}).get("materialized")
    if declared:
        return str(declared)
    if sql.exists():
        found = re.search(r"materialized\s*=\s*['\"](\w+)['\"]", sql.read_text())
        if found:
            return found[1]
    return "table"


def _parse(yml: Path, model: dict[str, Any]) -> Signal:
    name = str(model["name"])
    where = f"{yml.name} ({name})"
    block: dict[str, Any] = model["config"]["meta"]["signal"]
    signal_name = str(_require(block, "name", where))
    if not NAME.match(signal_name):
        raise CatalogueError(f"{where}: signal name {signal_name!r} is not a lowercase identifier")
    columns = {str(c["name"]) for c in model.get("columns") or []}
    key = tuple(str(k) for k in _require(block, "key", where))
    span_block = _require(block, "span", where)
    span = Span(str(span_block["column"]), str(span_block.get("kind", "timestamp")))
    # Default: the span column alone, the order the API always answered in.
    order_by = tuple(str(c) for c in block.get("order_by") or (span.column,))
    for column in {*key, span.column, *order_by}:
        if column not in columns:
            raise CatalogueError(f"{where}: {column!r} is not a documented column of {name}")
    if span.kind not in ("timestamp", "business_date"):
        raise CatalogueError(f"{where}: span kind is timestamp or business_date")
    served = None
    if block.get("served"):
        route = str(_require(block["served"], "route", where))
        if route not in ROUTES:
            raise CatalogueError(f"{where}: route {route!r} is not one of {', '.join(ROUTES)}")
        served = Served(route, str(block["served"].get("scope", f"read:{route}")))
    day_column = None
    if block.get("exported"):
        day_column = str(_require(block["exported"], "day_column", where))
        if day_column not in columns:
            raise CatalogueError(f"{where}: {day_column!r} is not a documented column of {name}")
    recent = str(_require(block["pushed"], "recent", where)) if block.get("pushed") else None
    watched = bool(block.get("watched", recent is not None))
    if recent is not None and not watched:
        raise CatalogueError(f"{where}: a pushed signal must be watched for changes")
    headline = tuple(
        Headline(str(h["label"]), str(h["sql"]), str(h.get("format", "count")))
        for h in block.get("headline") or []
    )
    for figure in headline:
        if figure.format not in HEADLINE_FORMATS:
            raise CatalogueError(
                f"{where}: headline format {figure.format!r} is not one of "
                f"{', '.join(HEADLINE_FORMATS)}"
            )
    description = " ".join(str(model.get("description") or "").split())
    return Signal(
        name=signal_name,
        model=name,
        group=yml.parent.name,
        description=description,
        key=key,
        span=span,
        order_by=order_by,
        materialized=_model_materialization(model, yml.with_suffix(".sql")),
        served=served,
        export_day_column=day_column,
        push_recent=recent,
        watched=watched,
        headline=headline,
        yml=yml,
    )


def load(marts_dir: Path = MARTS_DIR) -> tuple[Signal, ...]:
    """Every signal declared under `marts_dir`: workforce, then crm, then by name."""
    found: list[Signal] = []
    for yml in sorted(marts_dir.rglob("*.yml")):
        document = yaml.safe_load(yml.read_text()) or {}
        for model in document.get("models") or []:
            meta = (model.get("config") or {}).get("meta") or {}
            if "signal" in meta:
                found.append(_parse(yml, model))
    names = [s.name for s in found]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise CatalogueError(f"signal names declared twice: {', '.join(duplicated)}")
    rank = {group: i for i, group in enumerate(ROUTES)}
    return tuple(sorted(found, key=lambda s: (rank.get(s.group, len(rank)), s.name)))


@cache
def signals() -> tuple[Signal, ...]:
    return load()


def by_name() -> dict[str, Signal]:
    return {s.name: s for s in signals()}


def get(name: str) -> Signal:
    try:
        return by_name()[name]
    except KeyError:
        known = ", ".join(s.name for s in signals())
        raise CatalogueError(f"unknown signal {name!r}; one of {known}") from None


def served(route: str) -> tuple[Signal, ...]:
    return tuple(s for s in signals() if s.served is not None and s.served.route == route)


def route_scope(route: str) -> str:
    """The scope a partner key needs for a route: the one its signals declare."""
    scopes = {s.served.scope for s in served(route) if s.served is not None}
    if len(scopes) != 1:
        raise CatalogueError(
            f"the signals served on {route} must declare one scope, not {sorted(scopes)}"
        )
    return scopes.pop()


def exported() -> tuple[Signal, ...]:
    return tuple(s for s in signals() if s.exported)


def pushed(group: str | None = None) -> tuple[Signal, ...]:
    return tuple(s for s in signals() if s.pushed and group in (None, s.group))


def watched() -> tuple[Signal, ...]:
    return tuple(s for s in signals() if s.watched)


def markdown_table() -> str:
    """The catalogue as the table in docs/signals.md (a test keeps the two equal)."""
    lines = [
        "| signal | mart | key (per restaurant) | partner API | file | push type |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in signals():
        api = (
            f"`GET /v1/restaurants/{{id}}/{s.served.route}` field `{s.name}` ({s.served.scope})"
            if s.served
            else "no"
        )
        file = f"`{s.name}.parquet`, `.csv` by `{s.export_day_column}`" if s.exported else "no"
        push = f"`{s.push_type}`" if s.pushed else "no"
        mart = f"[`{s.relation}`](../{s.yml.relative_to(DBT_PROJECT_DIR.parent)})"
        lines.append(f"| {s.name} | {mart} | {', '.join(s.key)} | {api} | {file} | {push} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
