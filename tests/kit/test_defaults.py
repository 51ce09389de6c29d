"""Table models build their defaults without reading a signature afresh (kit/defaults.py)."""

from __future__ import annotations

import inspect

import pytest

from kit.defaults import empty_dict, empty_list, new_id, utcnow
from services.feed.models import FeedModel
from services.groups.models import GroupsModel
from services.identity.models import IdentityModel


def _tables():
    for base in (FeedModel, GroupsModel, IdentityModel):
        for mapper in base._sa_registry.mappers:
            yield mapper.class_


@pytest.mark.parametrize(
    "table", sorted(_tables(), key=lambda t: (t.__module__, t.__name__)), ids=lambda table: table.__name__
)
def test_every_default_factory_of_a_table_carries_its_signature(table):
    """pydantic reads the factory's signature at each construction of a table object; a
    builtin (``list``) would have its text signature parsed every time."""
    factories = {name: f.default_factory for name, f in table.model_fields.items() if f.default_factory}
    for name, factory in factories.items():
        assert "__signature__" in getattr(factory, "__dict__", {}), f"{table.__name__}.{name}: {factory!r}"


def test_the_stored_signature_is_the_one_inspect_returns():
    for factory in (empty_list, empty_dict, new_id, utcnow):
        assert inspect.signature(factory) is factory.__signature__  # type: ignore[attr-defined]
        assert not inspect.signature(factory).parameters


def test_each_default_is_a_new_object():
    assert empty_list() == [] and empty_list() is not empty_list()
    assert empty_dict() == {} and empty_dict() is not empty_dict()
    assert new_id() != new_id()
