"""Swagger UI at ``/docs`` and ReDoc at ``/redoc``, served with their assets from the installed
``fastapi-offline`` package: intranets are often offline, so the pages load nothing from any
other host (a Content-Security-Policy says so to the browser too). The Authorize dialog signs
in with the OAuth2 password flow at ``/api/v1/auth/token`` (the code flow needs an app registered
for the docs page, which a deployment may add)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

ASSETS = Path(fastapi_offline.__file__).parent / "static"
STATIC = "/docs/static"
SWAGGER_PARAMETERS = {
    "validatorUrl": None,  # the default badge asks an outside validator
    "persistAuthorization": True,
    "displayRequestDuration": True,
    "tryItOutEnabled": True,
}
# ReDoc's sidebar shows a logo from its CDN; the page shows ours instead.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'self'"
)


@cache
def _redoc_bundle() -> bytes:
    return (
        (ASSETS / "redoc.standalone.js")
        .read_bytes()
        .replace(REDOC_LOGO.encode(), f"{STATIC}/favicon.png".encode())
    )


def _page(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = CSP
    return response


def install_docs(app: FastAPI, *, title: str, openapi_url: str = "/openapi.json") -> None:
    @app.get(f"{STATIC}/redoc.standalone.js", include_in_schema=False)
    async def redoc_bundle() -> Response:
        return Response(_redoc_bundle(), media_type="text/javascript")

    app.mount(STATIC, StaticFiles(directory=ASSETS), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _page(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{title}: Swagger UI",
                swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
                swagger_css_url=f"{STATIC}/swagger-ui.css",
                swagger_favicon_url=f"{STATIC}/favicon.png",
                oauth2_redirect_url="/docs/oauth2-redirect",
                swagger_ui_parameters=SWAGGER_PARAMETERS,
            )
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return _page(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _page(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{title}: ReDoc",
                redoc_js_url=f"{STATIC}/redoc.standalone.js",
                redoc_favicon_url=f"{STATIC}/favicon.png",
                with_google_fonts=False,
            )
        )
