"""Identity's HTTP routes."""

from services.identity.routes import (
    accounts,
    admin,
    auth,
    internal,
    oauth,
    personas,
    scim,
    search,
    sessions,
    webhooks,
    well_known,
)

routers = [
    well_known.router,
    auth.router,
    oauth.router,
    sessions.router,
    accounts.router,
    personas.router,
    search.router,
    admin.router,
    scim.router,
    webhooks.router,
    internal.router,
    internal.media_router,
]
