"""Identity's HTTP routes."""

from services.identity.routes import (
    accounts,
    admin,
    auth,
    internal,
    personas,
    scim,
    search,
    webhooks,
    well_known,
)

routers = [
    well_known.router,
    auth.router,
    accounts.router,
    personas.router,
    search.router,
    admin.router,
    scim.router,
    webhooks.router,
    internal.router,
]
