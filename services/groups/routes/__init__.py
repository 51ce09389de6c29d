"""Groups' HTTP routes."""

from services.groups.routes import groups

routers = [groups.router]
