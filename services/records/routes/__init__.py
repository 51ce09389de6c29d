"""Records' HTTP routes: ``/api/v1/records/...`` for officers, ``/api/v1/me/export`` and
``/api/v1/me/exports/...`` for a persona's own export (the gateway routes them here before
identity's ``/api/v1/me``)."""

from services.records.routes import audit, dispositions, exports, matters, me, policies

routers = [
    policies.router,
    matters.router,
    exports.router,
    dispositions.router,
    audit.router,
    me.router,
]
