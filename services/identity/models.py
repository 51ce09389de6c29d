"""Identity's tables, on its own registry."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from kit.db import UTCDateTime, new_metadata
from kit.defaults import empty_dict, empty_list, new_id, random_id, utcnow
from kit.outbox import OutboxTables


class IdentityModel(SQLModel, registry=registry(metadata=new_metadata())):
    pass


outbox_tables = OutboxTables(IdentityModel.metadata)


class Account(IdentityModel, table=True):
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    password_hash: str = Field(max_length=255)
    status: str = Field(default="active", max_length=20)
    roles: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    provisioned: bool = Field(default=False, description="Managed by HR provisioning (SCIM).")
    external_id: str | None = Field(default=None, max_length=255, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    password_changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    email_verified_at: datetime | None = Field(
        default=None,
        sa_type=UTCDateTime,
        description="When the owner proved the address (registration's mailed token, or single sign-on); "
        "null for accounts made by HR and for those registered before addresses were verified.",
    )


class Persona(IdentityModel, table=True):
    """One face of an account. Its id is random and its timestamps move only with its own
    edits, so that nothing about it pairs with the other persona (docs/boundary.md)."""

    __table_args__ = (
        UniqueConstraint("account_id", "kind", name="uq_persona_account_kind"),
        UniqueConstraint("kind", "handle", name="uq_persona_kind_handle"),
    )

    id: uuid.UUID = Field(default_factory=random_id, primary_key=True)
    account_id: uuid.UUID = Field(foreign_key="account.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=20)
    handle: str = Field(max_length=30)
    display_name: str = Field(max_length=100)
    job_title: str | None = Field(default=None, max_length=100)
    department: str | None = Field(default=None, max_length=100)
    location: str | None = Field(default=None, max_length=100)
    skills: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    interests: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    bio: str | None = Field(default=None, max_length=2000)
    avatar_url: str | None = Field(default=None, max_length=500)
    avatar: dict[str, Any] | None = Field(
        default=None,
        sa_column=Column(JSON(none_as_null=True), nullable=True),
        description="The avatar's file as media described it when it was attached (a MediaAttachment, "
        "decision 0036); media keeps the bytes and serves them by identity's rule.",
    )
    pronouns: str | None = Field(default=None, max_length=40)
    manager_id: str | None = Field(
        default=None, max_length=255, description="From HR (SCIM enterprise manager)."
    )
    discoverable: bool = True
    status: str = Field(default="active", max_length=20)
    pending_status: str | None = Field(
        default=None, max_length=20, description="A status that takes effect at pending_status_at."
    )
    pending_status_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    moderation_hold: bool = Field(
        default=False,
        description="Suspended by moderation (decision 0032): the persona shows as suspended while "
        "held, whatever its account's status (personas.effective_status).",
    )
    moderation_hold_at: datetime | None = Field(
        default=None,
        sa_type=UTCDateTime,
        description="The time of the moderation event that last set or lifted the hold; an older "
        "event arriving late is ignored.",
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="The owner's (or HR's) last edit of the profile."
    )


class Registration(IdentityModel, table=True):
    """A self-registration waiting for its address to be proved by the mailed token (stored as
    a SHA-256 digest). It is not an account: it signs nobody in and holds neither the address
    nor the handle, so HR or whoever proves the address gets them (decision 0001)."""

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    email: str = Field(max_length=254, index=True)
    token_digest: str = Field(max_length=64, unique=True)
    password_hash: str = Field(max_length=255)
    handle: str = Field(max_length=30)
    display_name: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class RefreshToken(IdentityModel, table=True):
    """Stored as a SHA-256 digest. Every use rotates it; a second use of a rotated token
    revokes its whole family (RFC 9700 §4.14)."""

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    digest: str = Field(max_length=64, unique=True)
    family_id: uuid.UUID = Field(index=True)
    account_id: uuid.UUID = Field(foreign_key="account.id", index=True, ondelete="CASCADE")
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # A family an app got through the authorization-code flow is bound to the app, to the
    # persona chosen at consent and to the scopes granted: refreshing it never switches persona
    # (decision 0035). A family of the password grant has none of the three.
    app_id: str | None = Field(default=None, max_length=40, index=True)
    persona_id: uuid.UUID | None = Field(default=None)
    scope: str = Field(default="", max_length=200)


class App(IdentityModel, table=True):
    """An application people sign in to through the authorization-code flow with PKCE: a
    browser or mobile app (``public``, no secret) or a server-side one (``confidential``)."""

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=100)
    kind: str = Field(max_length=20, description="public or confidential")
    redirect_uris: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    scopes: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    secret_hash: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuthorizationCode(IdentityModel, table=True):
    """A code the authorization endpoint gave an app, stored as a SHA-256 digest: single use,
    short-lived, bound to the app, the redirect URI, the PKCE challenge and the persona chosen.
    ``family_id`` is the refresh family its redemption starts, revoked if the code is replayed."""

    __tablename__ = "authorization_code"

    digest: str = Field(primary_key=True, max_length=64)
    app_id: str = Field(foreign_key="app.id", index=True, ondelete="CASCADE", max_length=40)
    account_id: uuid.UUID = Field(foreign_key="account.id", index=True, ondelete="CASCADE")
    persona_id: uuid.UUID = Field(foreign_key="persona.id", ondelete="CASCADE")
    redirect_uri: str = Field(max_length=2000)
    code_challenge: str = Field(max_length=128)
    scope: str = Field(default="", max_length=200)
    family_id: uuid.UUID = Field(default_factory=random_id)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class SignInSession(IdentityModel, table=True):
    """A browser's sign-in at the authorization endpoint (a cookie holding a random value, stored
    as its SHA-256 digest), so that a second app signs in without the password again."""

    __tablename__ = "signin_session"

    id: uuid.UUID = Field(default_factory=random_id, primary_key=True)
    digest: str = Field(max_length=64, unique=True)
    account_id: uuid.UUID = Field(foreign_key="account.id", index=True, ondelete="CASCADE")
    user_agent: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuditEntry(IdentityModel, table=True):
    """An administrative action: who did what to which account, and why. A moderation action
    names no account: its actor is the moderator's professional persona or ``group:<id>``."""

    __tablename__ = "audit_entry"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    actor: str = Field(
        max_length=100, description="The acting persona id, client:<id>, group:<id> or operator."
    )
    action: str = Field(max_length=50)
    account_id: uuid.UUID | None = Field(default=None, index=True)
    # a moderation reason may be 2000 characters long (decision 0032)
    reason: str | None = Field(default=None, max_length=2000)
    details: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    # indexed for records' disposal of the log by age (decision 0033)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class Client(IdentityModel, table=True):
    """An integrator's client for the client-credentials grant."""

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=100)
    secret_hash: str = Field(max_length=255)
    scopes: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginThrottle(IdentityModel, table=True):
    """Recent sign-in failures for one key: a hashed account name or a client address."""

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=80)
    failure_count: int = 0
    window_started_at: datetime = Field(sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ScimUser(IdentityModel, table=True):
    """An account provisioned by HR over SCIM, with the SCIM representation HR last sent.

    The HR-owned fields are also applied to the account and its professional persona; SCIM
    never touches the personal persona."""

    __tablename__ = "scim_user"

    account_id: uuid.UUID = Field(foreign_key="account.id", primary_key=True, ondelete="CASCADE")
    user_name: str = Field(max_length=254, unique=True)
    external_id: str | None = Field(default=None, max_length=255, index=True)
    resource: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookEndpoint(IdentityModel, table=True):
    """An integrator's endpoint and the events it wants (Standard Webhooks)."""

    __tablename__ = "webhook_endpoint"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    owner: str = Field(max_length=100, index=True, description="persona id, or client:<id>")
    url: str = Field(max_length=500)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    contexts: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    secret: str = Field(max_length=100)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookDelivery(IdentityModel, table=True):
    __tablename__ = "webhook_delivery"
    __table_args__ = (UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_delivery_endpoint_event"),)

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: uuid.UUID = Field(foreign_key="webhook_endpoint.id", index=True, ondelete="CASCADE")
    event_id: uuid.UUID
    event_type: str = Field(max_length=100)
    subject: str = Field(max_length=100)
    payload: str
    status: str = Field(default="pending", max_length=20, index=True)
    attempt_count: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Disposal(IdentityModel, table=True):
    """A disposal records asked for (decision 0033): the rows of one class of identity's
    operational records created before ``before`` are to go. The ``Disposals`` worker deletes
    them in short batches and then forgets the request; a later cut-off of the same class
    replaces an earlier one still waiting."""

    record_class: str = Field(primary_key=True, max_length=30, description="audit_log or webhook_deliveries")
    before: datetime = Field(sa_type=UTCDateTime)
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
