"""Feed's HTTP routes."""

from services.feed.routes import following, posts, timelines

routers = [posts.router, timelines.router, following.router]
