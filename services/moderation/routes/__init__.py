"""Moderation's HTTP routes. The group queue's path sits under groups' prefix at the gateway
(``/api/v1/groups/{id}/reports``), which routes it here."""

from services.moderation.routes import conduct, group_queue, notices, queue, reports, stats, terms

routers = [
    reports.router,
    queue.router,
    group_queue.router,
    notices.router,
    conduct.router,
    terms.router,
    stats.router,
]
