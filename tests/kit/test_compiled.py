"""kit.compiled: statements compiled once for asyncpg, and what is kept of them."""

from __future__ import annotations

import pytest
from sqlalchemy import Integer, Text, bindparam, column, literal, select, table

from kit.compiled import Made, compile_statement

ITEMS = table("item", column("id", Integer), column("name", Text))


def test_named_parameters_in_their_order_and_the_rules_constants_fixed():
    statement = (
        select(ITEMS.c.id)
        .where(ITEMS.c.name == bindparam("name", type_=Text()), ITEMS.c.id > literal(7))
        .where(ITEMS.c.id < bindparam("below", type_=Integer()))
        .where(ITEMS.c.name != bindparam("name", type_=Text()))
    )
    compiled = compile_statement(statement)
    assert ":name" not in compiled.sql
    # a name used twice is one parameter, its placeholder written twice
    assert [n for n in compiled.names if n in ("name", "below")] == ["name", "below"]
    name = f"${compiled.names.index('name') + 1}"
    assert compiled.sql.count(f"{name}::VARCHAR") == 2, compiled.sql
    args = compiled.args({"name": "ada", "below": 10})
    assert len(args) == len(compiled.names) == 3
    assert args.count("ada") == 1 and 10 in args and 7 in args  # the constant, compiled in


def test_a_list_to_expand_at_each_run_is_refused():
    with pytest.raises(ValueError, match="expand"):
        compile_statement(select(ITEMS.c.id).where(ITEMS.c.id.in_(bindparam("ids", expanding=True))))


def test_made_once_for_each_key_and_the_oldest_dropped_past_the_limit():
    made: list[str] = []
    kept: Made[str] = Made(2)

    def make(key: str) -> str:
        made.append(key)
        return key.upper()

    assert [kept.get(k, lambda k=k: make(k)) for k in ("a", "b", "a", "c", "b", "a")] == list("ABACBA")
    # a kept, b kept; c drops a (the oldest made); b still kept; a made again, dropping b
    assert made == ["a", "b", "c", "a"]
    assert len(kept) == 2
