"""Default factories for table models, each carrying its signature.

SQLModel builds a table object by asking pydantic for every field's default, and pydantic
(2.14) then checks, at every construction, whether the factory takes the validated data by
reading the factory's signature. For a builtin such as ``list`` that means parsing its text
signature again (about 150 µs, with cyclic garbage for the collector), three times per
``Post``; for a plain function, building a ``Signature`` (about 10 µs). A factory with
``__signature__`` set answers at once. pydantic/pydantic#13376 describes the same cost for
private attributes; validation models (not tables) are not affected.

``new_id``, ``random_id`` and ``utcnow`` are kit.ids' and kit.timeutil's own functions, given their signature
here: importing this module sets it on them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from kit import ids, timeutil

T = TypeVar("T")


def signed(factory: Callable[[], T]) -> Callable[[], T]:
    """Stores the factory's signature on it, where ``inspect.signature`` looks first."""
    factory.__signature__ = inspect.signature(factory)  # type: ignore[attr-defined]
    return factory


@signed
def empty_list() -> list[Any]:
    return []


@signed
def empty_dict() -> dict[str, Any]:
    return {}


new_id = signed(ids.new_id)
random_id = signed(ids.random_id)
utcnow = signed(timeutil.utcnow)
