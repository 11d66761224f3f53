"""Which dbt models feed a signal's mart, and which of them record a watermark, read from SQL.

A signal's freshness is that of the stalest incremental model it reads through: each such
model records in `canonical.dbt_incremental_watermarks` the newest canonical `loaded_at`
it has processed (the incremental protocol, dbt_project/macros/incremental). Views compute
at read time and carry no watermark. The refs are read from the models' SQL (including
the `-- depends_on` comments), so the core needs no dbt manifest; tests/pipelines checks
this view against the manifest.
"""

from __future__ import annotations

import re
from functools import cache

from partner_signals.catalogue import DBT_PROJECT_DIR

MODELS_DIR = DBT_PROJECT_DIR / "models"
REF = re.compile(r"""\bref\(\s*['"]([A-Za-z0-9_]+)['"]\s*\)""")
RECORDS_WATERMARK = re.compile(r"\brecord_watermark\(\s*\)")


@cache
def _sql() -> dict[str, str]:
    return {path.stem: path.read_text() for path in sorted(MODELS_DIR.rglob("*.sql"))}


def refs(model: str) -> frozenset[str]:
    """The models `model` refs directly."""
    try:
        text = _sql()[model]
    except KeyError:
        raise KeyError(f"no dbt model {model!r} under {MODELS_DIR}") from None
    return frozenset(REF.findall(text)) - {model}


def upstream(model: str) -> frozenset[str]:
    """Every model `model` reads from, directly or not (itself excluded)."""
    seen: set[str] = set()
    todo = list(refs(model))
    while todo:
        name = todo.pop()
        if name in seen or name not in _sql():
            continue
        seen.add(name)
        todo.extend(refs(name))
    return frozenset(seen)


def records_watermark(model: str) -> bool:
    return bool(RECORDS_WATERMARK.search(_sql().get(model, "")))


def watermarked_models(model: str) -> tuple[str, ...]:
    """The incremental models (`model` itself included) whose watermarks bound how fresh
    `model` is: its rows hold no canonical event loaded after the oldest of them."""
    return tuple(sorted(m for m in {model, *upstream(model)} if records_watermark(m)))
