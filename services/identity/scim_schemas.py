"""The SCIM messages as the OpenAPI document names them (RFC 7643/7644 shapes).

The SCIM routes read their bodies themselves, through scim2-models, because SCIM's rules are
lenient in ways a schema cannot say: attribute names match whatever their case, and unknown
attributes of a resource are kept as sent. These models only describe the messages under
their canonical names, for generated clients; they validate nothing the routes receive.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ScimMeta(_Message):
    """Set by the service; ignored in requests."""

    resource_type: str = Field(alias="resourceType", examples=["User"])
    created: datetime | None = None
    last_modified: datetime | None = Field(default=None, alias="lastModified")
    location: str = Field(
        description="The resource's address under the suite's public URL (`IDENTITY_PUBLIC_URL`), "
        "a relative reference when none is configured."
    )


class ScimName(_Message):
    formatted: str | None = None
    family_name: str | None = Field(default=None, alias="familyName")
    given_name: str | None = Field(default=None, alias="givenName")
    middle_name: str | None = Field(default=None, alias="middleName")


class ScimEmail(_Message):
    """RFC 7643 §8.7.1 makes no sub-attribute required: an entry HR sent without `value` is
    kept and answered as it came."""

    value: str | None = None
    type: str | None = Field(default=None, examples=["work"])
    primary: bool | None = None


class ScimManager(_Message):
    value: str | None = Field(default=None, description="The manager's id in HR's system.")


class ScimEnterpriseUser(_Message):
    """The enterprise extension (RFC 7643 §4.3): department and manager are used, the rest kept."""

    employee_number: str | None = Field(default=None, alias="employeeNumber")
    department: str | None = None
    manager: ScimManager | None = None


class ScimUser(_Message):
    """A User resource (RFC 7643 §4.1) with the enterprise extension. Sent in POST and PUT
    (``id`` and ``meta`` are the service's and ignored there) and answered by every read.
    ``userName`` is required; attributes this service does not use are kept as sent."""

    schemas: list[str] = Field(
        default=[CORE_USER],
        examples=[[CORE_USER, ENTERPRISE_USER]],
        description="Always in an answer. A request should send it (RFC 7644); one that leaves it "
        "out is read by its attributes, as HR systems that omit it expect.",
    )
    id: str | None = Field(default=None, description="The account's id; set by the service.")
    external_id: str | None = Field(default=None, alias="externalId", description="HR's own id.")
    user_name: str = Field(alias="userName")
    name: ScimName | None = None
    display_name: str | None = Field(default=None, alias="displayName")
    title: str | None = None
    active: bool | None = Field(
        default=None,
        description="false deactivates the account; an administrator's suspension shows as false.",
    )
    emails: list[ScimEmail] | None = None
    enterprise: ScimEnterpriseUser | None = Field(default=None, alias=ENTERPRISE_USER)
    meta: ScimMeta | None = None


class ScimPatchOperation(_Message):
    op: Literal["add", "remove", "replace"]
    path: str | None = Field(default=None, description="An attribute path; absent, `value` holds attributes.")
    value: Any = None


class ScimPatchOp(_Message):
    """A PatchOp message (RFC 7644 §3.5.2)."""

    schemas: list[Literal["urn:ietf:params:scim:api:messages:2.0:PatchOp"]]
    operations: list[ScimPatchOperation] = Field(alias="Operations", min_length=1)


class ScimSearchRequest(_Message):
    """A SearchRequest message (RFC 7644 §3.4.3): the query of ``GET /Users`` as a body."""

    schemas: list[Literal["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]] = Field(
        default=["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        description="A request should send it (RFC 7644); one that leaves it out is read as a search.",
    )
    attributes: list[str] | None = None
    excluded_attributes: list[str] | None = Field(default=None, alias="excludedAttributes")
    filter: str | None = Field(default=None, examples=['userName eq "bjensen"'])
    sort_by: str | None = Field(default=None, alias="sortBy")
    sort_order: Literal["ascending", "descending"] | None = Field(default=None, alias="sortOrder")
    start_index: int | None = Field(default=None, alias="startIndex", ge=1)
    count: int | None = Field(default=None, ge=0, le=200)


class ScimListResponse(_Message):
    """A ListResponse of users (RFC 7644 §3.4.2)."""

    schemas: list[Literal["urn:ietf:params:scim:api:messages:2.0:ListResponse"]]
    total_results: int = Field(alias="totalResults")
    start_index: int = Field(alias="startIndex")
    items_per_page: int = Field(alias="itemsPerPage")
    resources: list[ScimUser] = Field(alias="Resources")


class ScimError(_Message):
    """An error in SCIM's format (RFC 7644 §3.12)."""

    schemas: list[Literal["urn:ietf:params:scim:api:messages:2.0:Error"]]
    status: str = Field(examples=["404"])
    scim_type: str | None = Field(default=None, alias="scimType", examples=["invalidValue"])
    detail: str


class Supported(_Message):
    supported: bool


class BulkSupport(Supported):
    max_operations: int = Field(alias="maxOperations")
    max_payload_size: int = Field(alias="maxPayloadSize")


class FilterSupport(Supported):
    max_results: int = Field(alias="maxResults")


class AuthenticationScheme(_Message):
    type: str
    name: str
    description: str
    primary: bool | None = None


class ServiceProviderConfig(_Message):
    """What this SCIM service supports (RFC 7643 §5)."""

    schemas: list[str]
    documentation_uri: str | None = Field(default=None, alias="documentationUri")
    patch: Supported
    bulk: BulkSupport
    filter: FilterSupport
    change_password: Supported = Field(alias="changePassword")
    sort: Supported
    etag: Supported
    authentication_schemes: list[AuthenticationScheme] = Field(alias="authenticationSchemes")
    meta: ScimMeta


class SchemaExtension(_Message):
    schema_: str = Field(alias="schema")
    required: bool


class ResourceType(_Message):
    """A resource type (RFC 7643 §6); here, User alone."""

    schemas: list[str]
    id: str
    name: str
    description: str | None = None
    endpoint: str
    schema_: str = Field(alias="schema")
    schema_extensions: list[SchemaExtension] = Field(default_factory=list, alias="schemaExtensions")
    meta: ScimMeta


class Schema(_Message):
    """A schema's definition (RFC 7643 §7): its attributes, as RFC 7643 describes them."""

    schemas: list[str]
    id: str
    name: str | None = None
    description: str | None = None
    attributes: list[dict[str, Any]]
    meta: ScimMeta


class ResourceTypeListResponse(_Message):
    schemas: list[Literal["urn:ietf:params:scim:api:messages:2.0:ListResponse"]]
    total_results: int = Field(alias="totalResults")
    start_index: int = Field(alias="startIndex")
    items_per_page: int = Field(alias="itemsPerPage")
    resources: list[ResourceType] = Field(alias="Resources")


class SchemaListResponse(_Message):
    schemas: list[Literal["urn:ietf:params:scim:api:messages:2.0:ListResponse"]]
    total_results: int = Field(alias="totalResults")
    start_index: int = Field(alias="startIndex")
    items_per_page: int = Field(alias="itemsPerPage")
    resources: list[Schema] = Field(alias="Resources")
