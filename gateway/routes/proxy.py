"""The proxy's catch-all routes under ``/api/v1/``, ``/.well-known/`` and ``/scim/v2/``: nearly
every request the gateway answers. For each request, in order:

1. the service that owns the path (``gateway.routing``), or a 404 for a path no service owns
   or one with dot segments;
2. the rate limit per client address, then, unless the route needs no token (a public one,
   the stream opened with a ticket, or a media file opened with a signed link) or a limit is
   already reached, the bearer token and the limit per token subject;
3. a 429 for a reached limit, or else the service's answer (``gateway.proxy``), with the
   rate-limit headers and, on a 405, every method the document has for the path. Media's
   routes alone are forwarded their own way (an upload's body streamed, files streamed back);
   other requests pay one comparison for it.

They are plain Starlette routes: the proxy takes the request as it is, so FastAPI's parameter
solving would only cost (about a tenth of the gateway's own throughput; decision 0013). What
the handler needs is given to it once, when ``create_app`` builds it.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.convertors import PathConvertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response

from domain.principal import Principal
from gateway import ratelimit, search
from gateway.openapi import OpenAPISource
from gateway.proxy import Forwarder
from gateway.ratelimit import Decision, RateLimiter
from gateway.routing import (
    GATEWAY,
    MEDIA_SERVICE,
    UPLOAD,
    Route,
    is_media_file,
    is_public,
    opens_file_with_signature,
    opens_stream_with_ticket,
    request_path,
    route_for,
)
from gateway.settings import GatewaySettings
from gateway.upstream import Target
from kit.addresses import ClientAddress
from kit.errors import NotFound, problem_response
from kit.metrics import NamedRoute, set_route_label
from kit.tokens import TokenVerifier, bearer_token

# The methods a route may have; a token is checked for these only: any other method is the
# service's to refuse (405 with its Allow), token or not.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
OTHER_METHODS = ("HEAD", "OPTIONS", "TRACE")


class AnyPath(PathConvertor):
    """Starlette's ``path`` matches no newline (``.*``), so a path holding ``%0A`` missed the
    proxy and got the gateway's own 404, in problem+json even under SCIM, whose errors are
    scim+json: the proxy's routes take every character, and the service answers."""

    regex = r"[\s\S]*"


register_url_convertor("anypath", AnyPath())
PREFIXES = tuple(
    f"{prefix}{{path:anypath}}" for prefix in ("/api/v1/", "/.well-known/", "/scim/v2/", "/oauth/")
)


def _route_label(route: Route) -> str:
    """The metrics label of a path before the gateway has the services' templates: the route's
    prefix, or, for a route with a suffix, its one segment as a parameter, so that moderation's
    ``/api/v1/groups/{id}/reports`` is not counted as a path of groups'."""
    return f"{route.prefix}{{id}}{route.suffix}" if route.suffix else route.prefix


class Proxy:
    """The proxy routes' handler, with everything it uses."""

    __slots__ = ("client_address", "forwarder", "limiter", "settings", "source", "targets", "verifier")

    def __init__(
        self,
        *,
        settings: GatewaySettings,
        targets: Mapping[str, Target],
        forwarder: Forwarder,
        source: OpenAPISource,
        verifier: TokenVerifier[Principal],
        limiter: RateLimiter | None,
        client_address: ClientAddress,
    ) -> None:
        self.settings = settings
        self.targets = dict(targets)
        self.forwarder = forwarder
        self.source = source
        self.verifier = verifier
        self.limiter = limiter
        self.client_address = client_address

    def routes(self) -> list[NamedRoute]:
        """The catch-all routes; the app puts them before its own, so that the requests they
        serve (nearly all) are matched at once. No route of the gateway's own lies under their
        prefixes."""
        methods = [*METHODS, *OTHER_METHODS]
        return [
            NamedRoute(prefix, self.handle, methods=methods, name="proxy", include_in_schema=False)
            for prefix in PREFIXES
        ]

    async def handle(self, request: Request) -> Response:
        path = request_path(request.scope)
        route = route_for(path)
        if route is None or any(segment in {".", ".."} for segment in path.split("/")):
            raise NotFound("No resource at this path.")
        templates = self.source.templates
        template = templates.match(path)
        set_route_label(request.scope, template or _route_label(route))
        if route.service == GATEWAY and request.method != "GET":  # the gateway's own search
            detail = "This resource answers GET only."
            return problem_response(
                request,
                405,
                "Method Not Allowed",
                detail,
                slug="method-not-allowed",
                headers={"Allow": "GET"},
            )
        limiter = self.limiter
        decisions: list[Decision] = []
        group = self.settings.rate_limit_group(path)
        peer = request.client.host if request.client else "unknown"
        address = self.client_address(peer, request.headers.get("x-forwarded-for"))
        if limiter is not None and (decision := await limiter.hit(group, "address", address)):
            decisions.append(decision)
        media = route.service == MEDIA_SERVICE
        needs_token = (
            request.method in METHODS
            and not is_public(request.method, path)
            and not opens_stream_with_ticket(request.method, path, request.scope)
            and not (media and opens_file_with_signature(request.method, path, request.scope))
        )
        if not any(not d.allowed for d in decisions) and needs_token:
            principal = await self.verifier.verify(bearer_token(request))
            request.state.principal = principal  # for the access log
            if limiter is not None and (decision := await limiter.hit(group, "token", principal.subject)):
                decisions.append(decision)
        extra = ratelimit.headers(decisions)
        if any(not d.allowed for d in decisions):
            return _too_many_requests(request, extra)
        if route.service == GATEWAY:
            response = await search.search(request, self.forwarder, self.targets, address)
        elif media:
            response = await self._media(request, path, address)
        else:
            response = await self.forwarder.forward(request, self.targets[route.service], address)
        for key, value in extra.items():
            response.headers.setdefault(key, value)
        if response.status_code == 405 and template and templates.methods(template):
            # A FastAPI service names only the first matching route's methods in Allow.
            response.headers["Allow"] = ", ".join(templates.methods(template))
        return response

    async def _media(self, request: Request, path: str, address: str) -> Response:
        """Media's routes (decision 0036): the upload's body streamed under its own cap, a file
        or preview streamed back whatever its type, anything else forwarded as usual."""
        target = self.targets[MEDIA_SERVICE]
        if request.method == "POST" and path == UPLOAD:
            return await self.forwarder.forward_upload(
                request, target, address, self.settings.upload_max_bytes
            )
        download = request.method in ("GET", "HEAD") and is_media_file(path)
        return await self.forwarder.forward(request, target, address, download=download)


def _too_many_requests(request: Request, headers: dict[str, str]) -> Response:
    return problem_response(
        request,
        429,
        "Too Many Requests",
        "Too many requests; try again after the time in Retry-After.",
        slug="rate-limited",
        headers=headers,
    )
