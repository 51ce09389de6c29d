"""Feed's HTTP routes."""

from services.feed.routes import (
    comments,
    following,
    internal,
    notifications,
    posts,
    reactions,
    search,
    timelines,
)

routers = [
    posts.router,
    comments.router,
    reactions.router,
    timelines.router,
    search.router,
    following.router,
    notifications.router,
    internal.router,
    internal.records_router,
    internal.media_router,
]
