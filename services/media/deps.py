"""Media's request dependencies: the settings, the session, the outbox, the caller, and the
objects kept on ``app.state`` (the store, the HTTP client), so routes never read
``request.app.state`` themselves.

Two things here are particular to media:

- ``StreamedBodyRoute``, the route class of the upload. FastAPI solves a route's dependencies
  before its endpoint runs, and one of every service's (``kit.inputs.refuse_unstorable_input``)
  reads a multipart body whole to check its fields. The upload must read its body itself, as
  it streams, so its route solves nothing: the endpoint receives the request and calls the
  caller's dependency itself (``upload_caller``). Its OpenAPI description is still generated
  from the route (``openapi_extra`` gives the request body).
- ``file_access``: a file is read with a bearer token or with a signed link. A link is checked
  before anything is looked up; without one the caller is the token's persona.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import Depends, Query, Request, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from domain.principal import CurrentPersona, Principal, current_persona, current_principal, oauth2_scheme
from kit.db import Database, SessionDep
from kit.errors import BadRequest
from kit.internal import ServiceToken
from kit.outbox import OutboxDep
from services.media import links
from services.media.settings import MediaSettings
from services.media.storage import Storage

__all__ = [
    "CurrentPersona",
    "DatabaseDep",
    "FileAccess",
    "HttpDep",
    "OutboxDep",
    "ServiceToken",
    "SessionDep",
    "SettingsDep",
    "SigningKeyDep",
    "StorageDep",
    "StreamedBodyRoute",
]


async def _settings(request: Request) -> MediaSettings:
    settings: MediaSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[MediaSettings, Depends(_settings)]


async def _database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(_database)]


async def _storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


StorageDep = Annotated[Storage, Depends(_storage)]


async def _http(request: Request) -> httpx.AsyncClient:
    """The app's one HTTP client, for the owners' visibility answers."""
    client: httpx.AsyncClient = request.app.state.http_client
    return client


HttpDep = Annotated[httpx.AsyncClient, Depends(_http)]


async def _signing_key(settings: SettingsDep) -> bytes:
    return links.signing_key(settings)


SigningKeyDep = Annotated[bytes, Depends(_signing_key)]


class StreamedBodyRoute(APIRoute):
    """A route whose endpoint takes the request alone and reads its body itself: no
    dependency is solved before it (see the module's docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            response: Response = await endpoint(request)
            return response

        return handler


@dataclass(frozen=True)
class Upload:
    """What the upload's endpoint works with, taken from the request."""

    caller: Principal
    database: Database
    storage: Storage
    settings: MediaSettings
    content_type: str | None
    content_length: str | None
    chunks: AsyncIterator[bytes]


async def _chunks(request: Request) -> AsyncIterator[bytes]:
    """The body as it arrives; a client that goes away mid-body is a 400 (no one reads it)."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise BadRequest("The upload was interrupted.", slug="upload-interrupted") from None


async def upload_of(request: Request) -> Upload:
    """The caller (a persona's token, as for any route) and the body of an upload."""
    caller = await current_persona(await current_principal(request))
    return Upload(
        caller=caller,
        database=await _database(request),
        storage=await _storage(request),
        settings=await _settings(request),
        content_type=request.headers.get("content-type"),
        content_length=request.headers.get("content-length"),
        chunks=_chunks(request),
    )


@dataclass(frozen=True)
class Reader:
    """Who reads a file: a persona (bearer token), or whoever holds a valid signed link
    (``persona`` None)."""

    persona: Principal | None


def file_access(variant: links.Variant) -> Callable[..., Coroutine[Any, Any, Reader]]:
    async def access(
        request: Request,
        media_id: uuid.UUID,
        key: SigningKeyDep,
        expires: Annotated[
            str | None, Query(max_length=20, description="A signed link's expiry (Unix seconds).")
        ] = None,
        signature: Annotated[
            str | None, Query(max_length=128, description="A signed link's signature.")
        ] = None,
        _documented: Annotated[str | None, Depends(oauth2_scheme)] = None,
    ) -> Reader:
        if expires is not None or signature is not None:
            links.check(key, media_id, variant, expires, signature)
            return Reader(persona=None)
        return Reader(persona=await current_persona(await current_principal(request)))

    return access


FileAccess = Annotated[Reader, Depends(file_access("file"))]
PreviewAccess = Annotated[Reader, Depends(file_access("preview"))]
