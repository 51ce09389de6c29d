"""Groups' HTTP routes; the caller's own lists come first, so that ``/groups/memberships``
is not read as a group id."""

from services.groups.routes import groups, members, mine, requests

routers = [mine.router, groups.router, members.router, requests.router]
