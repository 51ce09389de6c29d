"""Settings of a service that keeps a replica of identity's personas and checks every persona
token against it (feed and groups); each subclasses with its own env prefix, so the variables
are ``FEED_UNKNOWN_PERSONA_WAIT_SECONDS``, ``GROUPS_UNKNOWN_PERSONA_WAIT_SECONDS``."""

from __future__ import annotations

from pydantic import Field

from kit.settings import ServiceSettings


class PersonaReplicaSettings(ServiceSettings):
    unknown_persona_wait_seconds: float = Field(
        default=3.0,
        ge=0,
        le=30,
        description="How long a token of a persona this service's replica does not know yet waits for "
        "its creation event (about a second behind identity) before it is refused with 401.",
    )
