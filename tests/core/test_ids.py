"""The id rule: the same in Python as in the ops schema's check constraints."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from partner_signals.ids import ID_PATTERN, check_id, is_id


def test_a_slug_with_dots_colons_and_dashes_is_an_id() -> None:
    assert is_id("acme-dxb:1.main_kitchen")
    assert check_id("a" * 64) == "a" * 64


@pytest.mark.parametrize(
    "value",
    ["", "-leading-dash", "a" * 65, "has space", "slash/inside", "trailing\n", "émigré", 42],
)
def test_anything_else_is_not(value: object) -> None:
    assert not is_id(value)


def test_check_id_names_what_it_refused() -> None:
    with pytest.raises(ValueError, match="restaurant_id 'no way' does not match"):
        check_id("no way", "restaurant_id")


def test_the_database_checks_the_same_pattern(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        checks = conn.execute(
            sa.text(
                "select conrelid::regclass::text, pg_get_constraintdef(oid) from pg_constraint "
                "where contype = 'c' and conrelid in "
                "('ops.companies'::regclass, 'ops.restaurants'::regclass) "
                "and pg_get_constraintdef(oid) like '%~%'"
            )
        ).all()
    assert {table for table, _ in checks} == {"ops.companies", "ops.restaurants"}
    for _, definition in checks:
        assert f"'{ID_PATTERN}'" in str(definition)
