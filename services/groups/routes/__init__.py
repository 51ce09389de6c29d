"""Groups' HTTP routes; the caller's own lists come first, so that ``/groups/memberships``
is not read as a group id. ``search`` answers ``/api/v1/search/groups``. ``internal`` holds the
routes other services call (internal token)."""

from services.groups.routes import groups, internal, members, mine, requests, search

routers = [
    mine.router,
    groups.router,
    members.router,
    requests.router,
    search.router,
    internal.router,
    internal.media_router,
    internal.feed_router,
]
