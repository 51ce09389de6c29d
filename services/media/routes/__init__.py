"""Media's HTTP routes: ``media`` (``/api/v1/media``: uploads, their files) and ``internal``
(the owners' and records' calls, behind the internal token)."""

from fastapi import APIRouter

from services.media.routes import internal, media

routers: list[APIRouter] = [media.router, internal.router, internal.records_router]
