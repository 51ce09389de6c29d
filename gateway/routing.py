"""The route table: which service owns which public path, and which paths need no token."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.types import Scope

from gateway.settings import GatewaySettings


@dataclass(frozen=True)
class Route:
    """``prefix`` owns the paths under it; with a ``suffix``, only the paths made of the prefix,
    exactly one segment, and the suffix (``/api/v1/groups/{id}/reports``)."""

    prefix: str
    service: str
    suffix: str = ""
    exact: bool = False  # the prefix alone, no path under it


# Search: each type at the service that owns it, and the gateway's own search over several
# (gateway.search, decision 0034).
SEARCH = "/api/v1/search"
SEARCH_TYPES = {"posts": "feed", "comments": "feed", "people": "identity", "groups": "groups"}
GATEWAY = "gateway"

# In order: the first route that matches owns the path, so a route goes before any prefix it
# sits under (tests/gateway/test_routing.py fails when one shadows another).
ROUTES = (
    # Moderation's paths sit under identity's and groups' prefixes (decision 0032).
    Route("/api/v1/me/notices", "moderation"),
    Route("/api/v1/admin/code-of-conduct", "moderation"),
    Route("/api/v1/admin/moderation/", "moderation"),
    Route("/api/v1/code-of-conduct", "moderation"),
    Route("/api/v1/reports", "moderation"),
    Route("/api/v1/moderation/", "moderation"),
    Route("/api/v1/groups/", "moderation", suffix="/reports"),
    # Records' paths, and a persona's own export under identity's /api/v1/me (decision 0033).
    Route("/api/v1/records/", "records"),
    Route("/api/v1/me/export", "records"),
    Route("/api/v1/me/exports", "records"),
    *(Route(f"{SEARCH}/{kind}", service) for kind, service in SEARCH_TYPES.items()),
    Route(SEARCH, GATEWAY, exact=True),
    Route("/api/v1/auth/", "identity"),
    Route("/api/v1/accounts", "identity"),
    Route("/api/v1/me", "identity"),
    Route("/api/v1/personas", "identity"),
    Route("/api/v1/admin/", "identity"),
    Route("/api/v1/webhooks", "identity"),
    Route("/.well-known/", "identity"),
    Route("/oauth/", "identity"),
    Route("/scim/v2/", "identity"),
    Route("/api/v1/posts", "feed"),
    Route("/api/v1/timelines/", "feed"),
    Route("/api/v1/following", "feed"),
    Route("/api/v1/followers", "feed"),
    Route("/api/v1/notifications", "feed"),
    Route("/api/v1/stream", "feed"),
    Route("/api/v1/groups", "groups"),
    Route("/api/v1/media", "media"),
)

# (method, path) pairs that carry no bearer token: registration and its confirmation, the token
# endpoint itself, the published keys and discovery, the sign-in pages. SCIM checks its own
# (integrator) tokens and answers in SCIM's format.
PUBLIC = {
    ("POST", "/api/v1/accounts"),
    ("POST", "/api/v1/accounts/verification"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/revoke"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/.well-known/oauth-authorization-server"),
    # the authorization endpoint's pages, which a browser opens (decision 0035)
    ("GET", "/oauth/authorize"),
    ("POST", "/oauth/authorize"),
    ("GET", "/oauth/callback"),
}
PUBLIC_PREFIXES = ("/scim/v2/",)
# The event stream, which a browser opens with a one-time ticket instead (decision 0035).
STREAM = "/api/v1/stream"
# Media (decision 0036): the upload, the one route whose body the gateway streams instead of
# reading it whole (``gateway.uploads``), and each media's file and preview, which it streams
# back with their length, Range answers included.
MEDIA_SERVICE = "media"
UPLOAD = "/api/v1/media"
_MEDIA_ITEMS = UPLOAD + "/"
_MEDIA_VARIANTS = frozenset({"file", "preview"})
_SIGNED_LINK = frozenset({"expires", "signature"})


def upstreams(settings: GatewaySettings) -> dict[str, str]:
    return {
        "identity": settings.identity_url.rstrip("/"),
        "feed": settings.feed_url.rstrip("/"),
        "groups": settings.groups_url.rstrip("/"),
        "moderation": settings.moderation_url.rstrip("/"),
        "records": settings.records_url.rstrip("/"),
        "media": settings.media_url.rstrip("/"),
    }


def request_path(scope: Scope) -> str:
    """The request's path as ``request.url.path`` reads it (``?``, ``#`` and ``\\`` escaped),
    without building the whole URL, which costs the gateway a few microseconds per request."""
    path: str = scope["path"]
    return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def route_for(path: str) -> Route | None:
    """The route that owns ``path``, matching whole path segments."""
    for route in ROUTES:
        prefix = route.prefix
        if route.exact:
            if path == prefix:
                return route
        elif route.suffix:
            if path.startswith(prefix) and path.endswith(route.suffix):
                segment = path[len(prefix) : len(path) - len(route.suffix)]
                if segment and "/" not in segment:
                    return route
        elif prefix.endswith("/"):
            if path.startswith(prefix):
                return route
        elif path == prefix or path.startswith(prefix + "/"):
            return route
    return None


def resolve(path: str) -> str | None:
    """The service that owns ``path``."""
    route = route_for(path)
    return route.service if route is not None else None


def is_public(method: str, path: str) -> bool:
    return (method, path) in PUBLIC or path.startswith(PUBLIC_PREFIXES)


def opens_stream_with_ticket(method: str, path: str, scope: Scope) -> bool:
    """``GET /api/v1/stream`` with a ``ticket`` query parameter and no Authorization header:
    a browser's ``EventSource``, which cannot send one, opening the stream with a one-time
    ticket. It needs no bearer here, since feed redeems the ticket, and it still counts against
    the client address's limit. Exactly that method and path: a ticket opens nothing else."""
    if method != "GET" or path != STREAM:
        return False
    if any(name == b"authorization" for name, _ in scope.get("headers", ())):
        return False
    query = scope.get("query_string", b"").decode("latin-1")
    return any(name == "ticket" for name, _ in parse_qsl(query, keep_blank_values=True))


def is_media_file(path: str) -> bool:
    """``/api/v1/media/{id}/file`` or ``/api/v1/media/{id}/preview``: exactly one segment as
    the id, and nothing after the variant."""
    if not path.startswith(_MEDIA_ITEMS):
        return False
    media_id, slash, variant = path[len(_MEDIA_ITEMS) :].partition("/")
    return bool(media_id) and bool(slash) and variant in _MEDIA_VARIANTS


def opens_file_with_signature(method: str, path: str, scope: Scope) -> bool:
    """``GET /api/v1/media/{id}/file|preview`` with both ``expires`` and ``signature`` query
    parameters (not empty) and no Authorization header: a signed link from a media object, which
    an ``<img>`` follows without a header (decision 0036). It needs no bearer here, since media
    checks the signature and the expiry before anything else; it still counts against the
    client address's limit. Exactly that method and those paths: a signature opens nothing else."""
    if method != "GET" or not is_media_file(path):
        return False
    if any(name == b"authorization" for name, _ in scope.get("headers", ())):
        return False
    query = scope.get("query_string", b"").decode("latin-1")
    named = {name for name, value in parse_qsl(query, keep_blank_values=True) if value}
    return named >= _SIGNED_LINK
