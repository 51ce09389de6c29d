"""Identity's public contract: request and response models, and the functions that map a
stored row to its one public shape."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, ClassVar, Literal, get_args
from urllib.parse import urlsplit

import email_validator
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, StrictBool, model_validator
from pydantic.json_schema import SkipJsonSchema

from domain.contexts import Context
from domain.handles import Handle
from domain.media import MediaAttachment
from domain.principal import APP_SCOPES
from kit.text import HttpsUrl, MultiLineText, SingleLineText
from kit.timeutil import as_utc
from services.identity.models import (
    Account,
    App,
    AuditEntry,
    Client,
    Persona,
    WebhookDelivery,
    WebhookEndpoint,
)

Name = Annotated[str, Field(min_length=1, max_length=100), SingleLineText]
ShortLine = Annotated[str, Field(min_length=1, max_length=100), SingleLineText]
Bio = Annotated[str, Field(min_length=1, max_length=2000), MultiLineText]
Keyword = Annotated[str, Field(min_length=1, max_length=40), SingleLineText]
Keywords = Annotated[list[Keyword], Field(max_length=50)]
Pronouns = Annotated[str, Field(min_length=1, max_length=40), SingleLineText]


def _email(value: str) -> str:
    """An address of any domain the organisation's mail reaches, internal names included
    (``agency.internal``, a single-label ``intranet``): deliverability is not checked."""
    try:
        return email_validator.validate_email(
            value, check_deliverability=False, globally_deliverable=False, test_environment=True
        ).normalized
    except email_validator.EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None


Email = Annotated[str, Field(max_length=254, json_schema_extra={"format": "email"}), AfterValidator(_email)]


PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH = 12, 256
"""The bounds the contract publishes; the configured policy lies within them."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Update(Strict):
    """A partial update: an omitted field is left alone. The fields named in ``not_null``
    cannot be emptied: their published type has no ``null``, and an explicit one is a 422."""

    not_null: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Update:
        for name in sorted(self.not_null & self.model_fields_set):
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null; omit it to leave it unchanged")
        return self


class AccountCreate(Strict):
    email: Email
    # Published bounds; the policy check in the route gives the person a clear message.
    password: str = Field(
        max_length=1024,
        json_schema_extra={
            "format": "password",
            "minLength": PASSWORD_MIN_LENGTH,
            "maxLength": PASSWORD_MAX_LENGTH,
            "pattern": r"\S",
        },
    )
    handle: Handle
    display_name: Name


class RegistrationAccepted(BaseModel):
    detail: str


class VerificationCreate(Strict):
    """The mailed token, the password chosen at registration (a token alone, clicked or
    prefetched by a mail scanner, proves nothing about who registered), and optionally another
    handle when the one asked for has been taken meanwhile."""

    token: str = Field(min_length=1, max_length=200)
    password: str = Field(max_length=1024, json_schema_extra={"format": "password"})
    handle: Handle | None = None


class AccountVerified(BaseModel):
    detail: str
    persona_id: uuid.UUID


class MediaChoice(Strict):
    """The upload to show: the id `POST /api/v1/media` answered, once the upload is ready. It
    must be the caller's own upload, an image, and attached to nothing else."""

    media_id: uuid.UUID


class PersonaPublic(BaseModel):
    """What anyone in the persona's context may see."""

    id: uuid.UUID
    kind: Context
    handle: str
    display_name: str
    job_title: str | None = None
    department: str | None = None
    location: str | None = None
    skills: list[str] = Field(default_factory=list)
    interests: list[str] = Field(default_factory=list)
    bio: str | None = None
    avatar_url: str | None = None
    avatar: MediaAttachment | None = Field(
        default=None,
        description="The picture set with `PUT /api/v1/personas/{id}/avatar`; null when none is.",
    )
    pronouns: str | None = None
    discoverable: StrictBool = True
    updated_at: datetime | None = Field(
        description="When the profile was last edited (by its owner, or by HR for HR-owned fields); "
        "null until then. Nothing done to the account moves it, and no creation time is shown: "
        "neither may pair a person's two personas (docs/boundary.md)."
    )


class PersonaSearchItem(PersonaPublic):
    """A persona found by people search: the directory's shape, and where the query matched."""

    highlight: str = Field(
        description="An HTML-escaped line of the display name, handle, job title, department and "
        "skills, each matching word (or word like a misspelled one) between <mark> and </mark>."
    )


class ProfessionalUpdate(Update):
    not_null = frozenset({"display_name", "skills"})

    display_name: Name | SkipJsonSchema[None] = None
    job_title: ShortLine | None = None
    department: ShortLine | None = None
    location: ShortLine | None = None
    skills: Keywords | SkipJsonSchema[None] = None
    bio: Bio | None = None
    avatar_url: HttpsUrl | None = None
    pronouns: Pronouns | None = None


_PROFESSIONAL_ONLY = "A professional persona's only: a personal persona answers 409."
_PERSONAL_ONLY = "A personal persona's only: a professional persona answers 409."


class PersonaUpdate(Update):
    """An edit of the caller's own persona, of either kind: a field's description says when
    only one kind has it. A field of the other kind is a 409; fields of both kinds, a 422."""

    # One object rather than a union of the two kinds' bodies, which only a field naming the
    # kind in every edit could tell apart; ``for_kind`` gives the body of the kind sent.
    not_null = ProfessionalUpdate.not_null | frozenset({"interests", "discoverable"})

    display_name: Name | SkipJsonSchema[None] = None
    bio: Bio | None = None
    avatar_url: HttpsUrl | None = None
    job_title: ShortLine | None = Field(default=None, description=_PROFESSIONAL_ONLY)
    department: ShortLine | None = Field(default=None, description=_PROFESSIONAL_ONLY)
    location: ShortLine | None = Field(default=None, description=_PROFESSIONAL_ONLY)
    skills: Keywords | SkipJsonSchema[None] = Field(default=None, description=_PROFESSIONAL_ONLY)
    pronouns: Pronouns | None = Field(default=None, description=_PROFESSIONAL_ONLY)
    interests: Keywords | SkipJsonSchema[None] = Field(default=None, description=_PERSONAL_ONLY)
    discoverable: StrictBool | SkipJsonSchema[None] = Field(default=None, description=_PERSONAL_ONLY)

    def for_kind(self) -> ProfessionalUpdate | PersonalUpdate:
        """The body of the kind whose fields were sent; ``ValidationError`` when fields of
        both kinds were."""
        sent = self.model_dump(exclude_unset=True)
        personal_only = PersonalUpdate.model_fields.keys() - ProfessionalUpdate.model_fields.keys()
        model = PersonalUpdate if sent.keys() & personal_only else ProfessionalUpdate
        return model.model_validate(sent)


class PersonalCreate(Strict):
    handle: Handle
    display_name: Name
    bio: Bio | None = None
    interests: list[Keyword] = Field(default_factory=list, max_length=50)
    avatar_url: HttpsUrl | None = None
    discoverable: StrictBool = True


class PersonalUpdate(Update):
    not_null = frozenset({"display_name", "interests", "discoverable"})

    display_name: Name | SkipJsonSchema[None] = None
    bio: Bio | None = None
    interests: Keywords | SkipJsonSchema[None] = None
    avatar_url: HttpsUrl | None = None
    discoverable: StrictBool | SkipJsonSchema[None] = None


AccountStatus = Literal["active", "suspended", "deactivated"]
Role = Literal["admin", "moderator", "communications", "records"]
ROLES: tuple[str, ...] = get_args(Role)


class MePublic(BaseModel):
    """The signed-in persona as its owner sees it. An answer holds only the data of the token's
    own persona: a professional persona's token shows the account and the professional persona;
    a personal persona's token shows the personal persona alone. No answer holds both personas,
    so that an app holding one persona's token learns nothing of the other."""

    context: Context = Field(description="The kind of the token's persona, whose data this is.")
    account_id: uuid.UUID | None = Field(description="The account; null with a personal persona's token.")
    email: str | None = Field(description="The account's address; null with a personal persona's token.")
    status: AccountStatus | None = Field(
        description="The account's status; null with a personal persona's token."
    )
    roles: list[Role] | None = Field(
        description="The account's roles, used through the professional persona only; null with a "
        "personal persona's token."
    )
    created_at: datetime | None = Field(
        description="When the account was created; null with a personal persona's token."
    )
    professional: PersonaPublic | None = Field(
        description="The professional persona; null with a personal persona's token."
    )
    personal: PersonaPublic | None = Field(
        description="The personal persona, only with its own token; always null with a professional "
        "persona's token, whether or not the account has one (sign in with `persona=personal` to "
        "reach it)."
    )


PersonaChoice = Annotated[
    Context,
    Field(description="Which of the account's personas the token speaks for; professional when left out."),
]
Scope = Annotated[
    str, Field(max_length=500, description="Space-separated scopes, narrowing what was granted.")
]
ClientId = Annotated[str, Field(max_length=40, description="The client's id, unless sent with HTTP Basic.")]
ClientSecret = Annotated[
    str, Field(max_length=200, description="A confidential client's secret, unless sent with HTTP Basic.")
]


class PasswordGrant(BaseModel):
    """A script's sign-in with the account's email and password (unless switched off,
    `IDENTITY_PASSWORD_GRANT`). A persona suspended by moderation gets a token only with
    `scope=notices`."""

    grant_type: Literal["password"]
    username: str = Field(max_length=254, description="The account's email.")
    password: str = Field(max_length=1024, json_schema_extra={"format": "password"})
    persona: PersonaChoice | None = None
    scope: Scope | None = None


class AuthorizationCodeGrant(BaseModel):
    """An app's code from `/oauth/authorize`, redeemed once, with the same `redirect_uri` and the
    PKCE verifier; the token speaks for the persona chosen at consent, within the scopes granted."""

    grant_type: Literal["authorization_code"]
    code: str = Field(max_length=200)
    redirect_uri: str = Field(max_length=2000)
    code_verifier: str = Field(max_length=128, description="The PKCE (S256) verifier.")
    client_id: ClientId | None = None
    client_secret: ClientSecret | None = None


class RefreshTokenGrant(BaseModel):
    """A refresh token, which rotates on every use (a reused one revokes its family). A password
    sign-in's may switch `persona`; an app's stays with its persona, takes the app's client and
    may narrow `scope`."""

    grant_type: Literal["refresh_token"]
    refresh_token: str = Field(max_length=200)
    persona: PersonaChoice | None = None
    scope: Scope | None = None
    client_id: ClientId | None = None
    client_secret: ClientSecret | None = None


class ClientCredentialsGrant(BaseModel):
    """An integrator client's own token (SCIM, webhooks): it speaks for the client, not a persona."""

    grant_type: Literal["client_credentials"]
    client_id: ClientId | None = None
    client_secret: ClientSecret | None = None
    scope: Scope | None = None


class TokenExchangeGrant(BaseModel):
    """An ID token of the trusted single sign-on provider (when one is configured), exchanged
    for this suite's tokens."""

    grant_type: Literal["urn:ietf:params:oauth:grant-type:token-exchange"]
    subject_token: str = Field(max_length=16384)
    subject_token_type: Literal["urn:ietf:params:oauth:token-type:id_token"]
    persona: PersonaChoice | None = None
    scope: Scope | None = None


class TokenRequest(
    RootModel[
        Annotated[
            PasswordGrant
            | AuthorizationCodeGrant
            | RefreshTokenGrant
            | ClientCredentialsGrant
            | TokenExchangeGrant,
            Field(discriminator="grant_type"),
        ]
    ]
):
    """The token endpoint's form, one shape per grant. A grant the server does not offer (see
    `grant_types_supported` in `/.well-known/oauth-authorization-server`) is a 400
    `unsupported_grant_type`; a missing field of a grant, a 400 `invalid_request`."""


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105
    expires_in: int
    refresh_token: str | None = None
    scope: str = ""
    persona_id: uuid.UUID | None = None
    context: Context | None = None


class TokenRevoked(BaseModel):
    """RFC 7009: the same answer whether the token was known, already revoked or never issued."""

    status: Literal["revoked"] = "revoked"


class JsonWebKey(BaseModel):
    """A public signing key (RFC 7517): RSA, for RS256 signatures."""

    kty: Literal["RSA"]
    use: Literal["sig"]
    alg: Literal["RS256"]
    kid: str
    n: str = Field(description="The modulus, base64url.")
    e: str = Field(description="The public exponent, base64url.")


class JsonWebKeySet(BaseModel):
    """The keys that verify access tokens, the one signing now first, then those still valid
    and the next one (decision 0018)."""

    keys: list[JsonWebKey]


class AuthorizationServerMetadata(BaseModel):
    """RFC 8414, also served as the OpenID discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str
    jwks_uri: str
    grant_types_supported: list[str]
    response_types_supported: list[str]
    response_modes_supported: list[str]
    code_challenge_methods_supported: list[str]
    scopes_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    authorization_response_iss_parameter_supported: bool
    id_token_signing_alg_values_supported: list[str]
    subject_types_supported: list[str]
    claims_supported: list[str]


class DeliveryQueued(BaseModel):
    """A delivery put back in the queue: the relay sends it on its next pass."""

    status: Literal["queued"] = "queued"


class TestDeliveryQueued(BaseModel):
    """A `webhook.test` event queued for this endpoint alone."""

    status: Literal["queued"] = "queued"
    event_id: uuid.UUID = Field(description="The `id` of the CloudEvent the endpoint will receive.")


ClientScope = Literal["scim", "webhooks", "read", "write"]
Reason = Annotated[
    str, Field(min_length=10, max_length=1000, description="Why; kept in the audit log."), MultiLineText
]


class PersonaSummary(BaseModel):
    id: uuid.UUID
    handle: str
    display_name: str


class AccountAdminPublic(BaseModel):
    """An account as administrators see it: never its personal persona."""

    id: uuid.UUID
    email: str
    status: AccountStatus
    roles: list[Role]
    provisioned: bool
    created_at: datetime
    professional: PersonaSummary | None


class AccountAdminUpdate(Strict):
    status: AccountStatus | None = None
    roles: list[Role] | None = Field(default=None, max_length=len(ROLES))
    reason: Reason | None = None


class AuditEntryPublic(BaseModel):
    id: uuid.UUID
    actor: str
    action: str
    account_id: uuid.UUID | None
    reason: str | None
    details: dict[str, object]
    created_at: datetime


class PersonaLinkRequest(Strict):
    persona_id: uuid.UUID
    reason: Reason


class PersonaLinkPublic(BaseModel):
    account_id: uuid.UUID
    professional_persona_id: uuid.UUID
    personal_persona_id: uuid.UUID | None


class ClientCreate(Strict):
    name: Name
    scopes: list[ClientScope] = Field(min_length=1, max_length=4)


class ClientPublic(BaseModel):
    client_id: str
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None = None


class ClientCreated(ClientPublic):
    client_secret: str = Field(description="Shown once; only its hash is kept.")


# Apps of the authorization-code flow (decision 0035).

AppKind = Literal["public", "confidential"]
AppScope = Literal["read", "write"]
assert get_args(AppScope) == APP_SCOPES

LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
# RFC 8252 §7.1: a private-use scheme is a reverse domain name, so it holds a dot
PRIVATE_USE_SCHEME = re.compile(r"^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$")
_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f]")


def _redirect_uri(value: str) -> str:
    """Where the authorization endpoint may send a browser back with a code: an absolute URI
    without a fragment or a wildcard (it is matched exactly), and one only the app can receive:
    https, plain http only on the device itself (a native app's loopback listener, RFC 8252
    §7.3), or a private-use scheme named after a domain the app's makers hold (RFC 8252 §7.1).
    Credentials in it would be sent to whoever reads the address bar."""
    if _UNSAFE.search(value):
        raise ValueError("must not contain spaces or control characters")
    if "#" in value:
        raise ValueError("must not have a fragment")
    if "*" in value:
        raise ValueError("must not hold a wildcard: redirect URIs are matched exactly")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise ValueError("is not a valid URI") from None
    if parts.scheme in ("https", "http"):
        if not parts.hostname:
            raise ValueError("must name a host")
        if "@" in parts.netloc:
            raise ValueError("must not hold credentials")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_NAMES:
            raise ValueError("may use plain http only on 127.0.0.1, [::1] or localhost")
    elif PRIVATE_USE_SCHEME.match(parts.scheme):
        if not parts.path.strip("/") and not parts.netloc:
            raise ValueError("must have a path after its scheme")
    else:
        raise ValueError(
            "must be an https URI, an http URI on a loopback address, or use a private-use scheme "
            "with a dot such as gov.agency.app:/callback (RFC 8252)"
        )
    return value


RedirectUri = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2000,
        examples=["https://app.agency.example/callback", "http://127.0.0.1/callback", "gov.agency.app:/cb"],
    ),
    AfterValidator(_redirect_uri),
]


class AppCreate(Strict):
    """An app people sign in to with the authorization-code flow and PKCE. ``public`` for an app
    that cannot keep a secret (a browser or mobile app), ``confidential`` for one that runs on a
    server and authenticates at the token endpoint with its secret."""

    name: Name = Field(description="Shown to people on the consent page.")
    kind: AppKind
    redirect_uris: list[RedirectUri] = Field(
        min_length=1,
        max_length=10,
        description="Matched exactly; a registered `http://127.0.0.1/…` or `http://[::1]/…` matches "
        "on any port (RFC 8252 §7.3).",
    )
    scopes: list[AppScope] = Field(
        default_factory=lambda: list[AppScope](["read", "write"]),
        min_length=1,
        max_length=len(APP_SCOPES),
        description="What the app may ask for: `read` reaches what the persona may read, `write` "
        "also lets it act as the persona.",
    )


class AppPublic(BaseModel):
    id: str = Field(description="The app's `client_id` in the authorization-code flow.")
    name: str
    kind: AppKind
    redirect_uris: list[str]
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None = None


class AppCreated(AppPublic):
    client_secret: str | None = Field(
        description="A confidential app's secret, shown once (only its hash is kept); null for a public app."
    )


class SessionApp(BaseModel):
    id: str
    name: str


class SessionPublic(BaseModel):
    """A way the caller is signed in: a browser at the sign-in page, an app's grant, or a
    password sign-in (a script, or an older client). Days only, not moments: a moment seen in
    one context could pair with one seen in the other (docs/boundary.md)."""

    id: uuid.UUID
    kind: Literal["browser", "app", "password"]
    app: SessionApp | None = Field(description="The app holding the grant; null but for `app`.")
    scope: str = Field(description="What an app's grant allows (`read`, `write`); empty otherwise.")
    since: date = Field(description="The day it began.")
    expires_on: date = Field(
        description="The day it ends unless it is used (an app's or a password "
        "sign-in's grant is renewed each time it is used)."
    )


EventPattern = Annotated[
    str,
    # `*`, a type (`post.created`, `moderation.content.hidden`) or a family at any level (`moderation.*`)
    Field(min_length=1, max_length=100, pattern=r"^(\*|[a-z_]+(\.[a-z_]+)*\.(\*|[a-z_]+))$"),
]


WebhookUrl = Annotated[
    str,
    Field(
        min_length=8,
        max_length=500,
        examples=["https://hooks.agency.example/govsocial"],
        description="https, no credentials, not an internal address; `IDENTITY_WEBHOOK_ALLOWED_HOSTS` "
        "lists the hosts allowed instead (they may be internal); plain http only with "
        "`IDENTITY_WEBHOOK_ALLOW_HTTP`.",
    ),
]


class WebhookCreate(Strict):
    url: WebhookUrl
    event_types: list[EventPattern] = Field(
        min_length=1, max_length=50, examples=[["post.created", "group.*"]]
    )
    contexts: list[Context] = Field(
        default_factory=lambda: list[Context](["professional"]),
        min_length=1,
        max_length=2,
        description="`personal` only when an administrator registers the endpoint.",
    )
    description: Annotated[str, Field(max_length=500), SingleLineText] | None = None


class WebhookUpdate(Update):
    not_null = frozenset({"url", "event_types", "contexts", "active"})

    url: WebhookUrl | SkipJsonSchema[None] = None
    event_types: Annotated[list[EventPattern], Field(min_length=1, max_length=50)] | SkipJsonSchema[None] = (
        None
    )
    contexts: Annotated[list[Context], Field(min_length=1, max_length=2)] | SkipJsonSchema[None] = None
    description: Annotated[str, Field(max_length=500), SingleLineText] | None = None
    active: StrictBool | SkipJsonSchema[None] = None


class WebhookPublic(BaseModel):
    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    contexts: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="The signing secret (Standard Webhooks `whsec_…`); shown once.")


class WebhookDeliveryPublic(BaseModel):
    id: int
    event_id: uuid.UUID
    event_type: str
    subject: str
    status: Literal["pending", "delivered", "failed"]
    attempt_count: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


# Records' calls (decision 0033), behind the internal token and outside the published API.

RecordsPurpose = Literal["hold", "export"]


class CustodiansRequest(Strict):
    """The accounts a hold or an export of one matter names, asked by one records officer with
    a reason: all of it goes to the audit log."""

    account_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)
    matter_id: uuid.UUID
    officer_id: uuid.UUID = Field(description="The officer's professional persona.")
    reason: Annotated[str, Field(min_length=1, max_length=2000), MultiLineText]
    purpose: RecordsPurpose


class RecordsProfile(BaseModel):
    """A persona as an export lists it: its profile and the status it shows."""

    id: uuid.UUID
    context: Context
    handle: str
    display_name: str
    job_title: str | None
    department: str | None
    location: str | None
    bio: str | None
    pronouns: str | None
    skills: list[str]
    interests: list[str]
    discoverable: bool
    status: str


class Custodian(BaseModel):
    account_id: uuid.UUID
    personas: list[RecordsProfile] = Field(description="The professional persona first.")


class CustodiansAnswer(BaseModel):
    custodians: list[Custodian]
    unknown: list[uuid.UUID] = Field(description="Accounts identity does not know.")


class OwnerPersonas(BaseModel):
    personas: list[RecordsProfile]


def persona_public(persona: Persona) -> PersonaPublic:
    return PersonaPublic.model_validate(persona, from_attributes=True)


def persona_search_item(persona: Persona, highlight: str) -> PersonaSearchItem:
    return PersonaSearchItem(**persona_public(persona).model_dump(), highlight=highlight)


def me_public(persona: Persona, account: Account) -> MePublic:
    """Only the token's own persona: with a personal token nothing of the account or of the
    professional persona, with a professional token nothing of the personal persona."""
    if persona.kind == "personal":
        return MePublic(
            context="personal",
            account_id=None,
            email=None,
            status=None,
            roles=None,
            created_at=None,
            professional=None,
            personal=persona_public(persona),
        )
    return MePublic(
        context="professional",
        account_id=account.id,
        email=account.email,
        status=account.status,
        roles=account.roles,
        created_at=account.created_at,
        professional=persona_public(persona),
        personal=None,
    )


def account_admin_public(account: Account, professional: Persona | None) -> AccountAdminPublic:
    return AccountAdminPublic(
        id=account.id,
        email=account.email,
        status=account.status,
        roles=account.roles,
        provisioned=account.provisioned,
        created_at=account.created_at,
        professional=PersonaSummary.model_validate(professional, from_attributes=True)
        if professional
        else None,
    )


def audit_entry_public(entry: AuditEntry) -> AuditEntryPublic:
    return AuditEntryPublic.model_validate(entry, from_attributes=True)


def client_public(client: Client) -> ClientPublic:
    return ClientPublic(
        client_id=client.id,
        name=client.name,
        scopes=client.scopes,
        created_at=client.created_at,
        revoked_at=client.revoked_at,
    )


def app_public(app: App) -> AppPublic:
    return AppPublic(
        id=app.id,
        name=app.name,
        kind="confidential" if app.kind == "confidential" else "public",
        redirect_uris=app.redirect_uris,
        scopes=app.scopes,
        created_at=app.created_at,
        revoked_at=app.revoked_at,
    )


def session_public(
    *,
    id: uuid.UUID,
    kind: Literal["browser", "app", "password"],
    app: App | None,
    scope: str,
    since: datetime,
    expires_at: datetime,
) -> SessionPublic:
    """A session with its times cut to the day (in UTC)."""
    return SessionPublic(
        id=id,
        kind=kind,
        app=SessionApp(id=app.id, name=app.name) if app is not None else None,
        scope=scope,
        since=as_utc(since).date(),
        expires_on=as_utc(expires_at).date(),
    )


def webhook_public(endpoint: WebhookEndpoint) -> WebhookPublic:
    return WebhookPublic.model_validate(endpoint, from_attributes=True)


def delivery_public(delivery: WebhookDelivery) -> WebhookDeliveryPublic:
    return WebhookDeliveryPublic.model_validate(delivery, from_attributes=True)


def records_profile(persona: Persona, status: str) -> RecordsProfile:
    """``status`` is the one the persona shows (``personas.effective_status``)."""
    return RecordsProfile(
        id=persona.id,
        context=persona.kind,
        handle=persona.handle,
        display_name=persona.display_name,
        job_title=persona.job_title,
        department=persona.department,
        location=persona.location,
        bio=persona.bio,
        pronouns=persona.pronouns,
        skills=persona.skills,
        interests=persona.interests,
        discoverable=persona.discoverable,
        status=status,
    )
