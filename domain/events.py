"""Identity's persona events as the services that keep a persona replica read them (groups,
moderation): the one description of their data, so that the replicas cannot drift apart.
Feed reads the same events more leniently (``services/feed/events.py``), as it also keeps
``discoverable``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PersonaChanged(BaseModel):
    """``persona.created``, ``persona.updated``, ``persona.deactivated`` (identity)."""

    model_config = ConfigDict(extra="ignore")

    context: str = Field(max_length=20)
    handle: str = Field(max_length=30)
    display_name: str = Field(max_length=100)
    status: str = Field(max_length=20)


class PersonaErased(BaseModel):
    """``persona.erased`` (identity)."""

    model_config = ConfigDict(extra="ignore")

    context: str = ""
