"""The one rule for company and restaurant ids: the ops schema's check constraint."""

from __future__ import annotations

import re
from typing import Final

# What `ops.companies` and `ops.restaurants` accept (migration 0001 checks the same
# text). Ids are checked against it before they reach a query: anything else cannot
# name a company or a restaurant, so it is refused without a round trip.
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_fullmatch: Final = re.compile(ID_PATTERN).fullmatch


def is_id(value: object) -> bool:
    """True when `value` could be a company or restaurant id (no trailing newline
    slips through, unlike `re.match` with `$`)."""
    return isinstance(value, str) and _fullmatch(value) is not None


def check_id(value: str, label: str = "id") -> str:
    """`value` itself, or ValueError naming `label` (for pydantic and argparse)."""
    if not is_id(value):
        raise ValueError(f"{label} {value!r} does not match {ID_PATTERN}")
    return value
