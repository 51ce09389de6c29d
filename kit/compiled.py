"""Statements compiled once, run many times on asyncpg directly (decision 0041).

A hot read built through SQLAlchemy at every request pays for putting its expressions
together again, for generating its cache key and for loading its rows, often more than the
database spends running it. Such a read is written once with SQLAlchemy, from the same
expressions as every other read of its kind (the rule stays stated once), every value a named
bound parameter; ``compile_statement`` turns it into asyncpg's text and the order of its
parameters' names, and ``Made`` keeps one for each shape of request. A request then costs a
dictionary lookup and a list of arguments (``Compiled.args``), and runs on a connection of
``kit.db.Database.raw``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Compiled:
    """A statement as asyncpg runs it: its text ($n placeholders) and the names of its
    parameters in their order, with the values compiled into it (constants of the rule)."""

    sql: str
    names: tuple[str, ...]
    fixed: Mapping[str, Any]

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        """The arguments for ``values`` (by name; the compiled constants fill the rest)."""
        return [values[name] if name in values else self.fixed[name] for name in self.names]


def compile_statement(statement: Any) -> Compiled:
    """``statement`` compiled for asyncpg, its parameters in their order. A parameter without
    a value must be given at each run, and cannot be a list to expand (a list goes in as an
    array: ``= ANY(...)``); the rule's own lists (``IN`` a few constants) are expanded here,
    once."""
    compiled = statement.compile(dialect=_DIALECT)
    required = [name for name, bind in compiled.binds.items() if bind.required]
    if any(compiled.binds[name].expanding for name in required):
        raise ValueError("a list to expand at each run cannot be compiled once")
    expanded = compiled.construct_expanded_state(dict.fromkeys(required))
    fixed = {name: value for name, value in expanded.parameters.items() if name not in required}
    return Compiled(expanded.statement, tuple(expanded.positiontup or ()), fixed)


class Made(Generic[T]):
    """What was made for each shape of request, for ``limit`` shapes at most: the oldest made
    is dropped first. (Shapes are few: how many words a query has in each clause, which
    filters it uses; the limit bounds what a caller sending every shape could make it keep.)"""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._made: dict[Hashable, T] = {}

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The one made for ``key``, by ``make()`` the first time."""
        found = self._made.get(key)
        if found is None:
            if len(self._made) >= self.limit:
                del self._made[next(iter(self._made))]
            found = self._made[key] = make()
        return found

    def __len__(self) -> int:
        return len(self._made)

    def clear(self) -> None:
        self._made.clear()
