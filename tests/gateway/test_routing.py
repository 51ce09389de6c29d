"""The route table: the first route that matches a path owns it, so a route placed after one
whose prefix covers it would never be reached. Moderation's paths sit under identity's and
groups' prefixes (decision 0032), which makes the order matter."""

from __future__ import annotations

import pytest

from gateway import routing
from gateway.routing import ROUTES, Route, is_public, resolve, route_for

SEGMENT = "0193a6c2-7b1e-7c4d-9f00-5e2a1b3c4d5e"


def _samples(route: Route) -> list[str]:
    """Paths the route is there to own: with a suffix, one segment between prefix and suffix;
    a prefix ending in ``/``, a path under it; an exact route, itself; any other prefix, itself
    and a path under it."""
    if route.exact:
        return [route.prefix]
    if route.suffix:
        return [f"{route.prefix}{SEGMENT}{route.suffix}"]
    if route.prefix.endswith("/"):
        return [f"{route.prefix}{SEGMENT}", f"{route.prefix}{SEGMENT}/more"]
    return [route.prefix, f"{route.prefix}/{SEGMENT}", f"{route.prefix}/{SEGMENT}/more"]


def _shadowed() -> list[str]:
    """Each sample path of a route that an earlier route takes, with the route that takes it."""
    return [
        f"{path} goes to {owner.prefix!r} ({owner.service}), not {route.prefix!r} ({route.service})"
        for route in routing.ROUTES
        for path in _samples(route)
        if (owner := route_for(path)) is not route and owner is not None
    ]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.service}:{r.prefix}{r.suffix}")
def test_every_route_owns_its_own_paths(route):
    for path in _samples(route):
        assert route_for(path) is route, path


def test_no_route_is_shadowed_by_an_earlier_one():
    assert _shadowed() == []


def test_the_shadow_check_fails_when_a_prefix_comes_before_a_route_under_it(monkeypatch):
    """The check above is not vacuous: put identity's ``/api/v1/me`` and groups' ``/api/v1/groups``
    first, and moderation's notices and group queue are never reached."""
    first = [
        r
        for r in ROUTES
        if (r.prefix, r.service) in {("/api/v1/me", "identity"), ("/api/v1/groups", "groups")}
    ]
    assert len(first) == 2
    monkeypatch.setattr(routing, "ROUTES", (*first, *(r for r in ROUTES if r not in first)))
    shadowed = _shadowed()
    assert (
        "/api/v1/me/notices goes to '/api/v1/me' (identity), not '/api/v1/me/notices' (moderation)"
        in shadowed
    )
    assert any(s.startswith(f"/api/v1/groups/{SEGMENT}/reports goes to '/api/v1/groups'") for s in shadowed)
    assert resolve("/api/v1/me/notices") == "identity"


def test_the_route_table_has_no_route_twice():
    keys = [(r.prefix, r.suffix) for r in ROUTES]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/reports",
        f"/api/v1/reports/{SEGMENT}",
        "/api/v1/me/notices",
        f"/api/v1/me/notices/{SEGMENT}/appeal",
        "/api/v1/code-of-conduct",
        "/api/v1/admin/code-of-conduct",
        "/api/v1/admin/moderation/terms",
        f"/api/v1/admin/moderation/terms/{SEGMENT}",
        "/api/v1/moderation/reports",
        f"/api/v1/moderation/reports/{SEGMENT}",
        f"/api/v1/moderation/reports/{SEGMENT}/assign",
        f"/api/v1/moderation/reports/{SEGMENT}/unassign",
        f"/api/v1/moderation/reports/{SEGMENT}/resolve",
        f"/api/v1/moderation/reports/{SEGMENT}/reopen",
        "/api/v1/moderation/stats",
        f"/api/v1/groups/{SEGMENT}/reports",
        "/api/v1/groups/x/reports",
    ],
)
def test_moderations_paths_go_to_moderation_and_need_a_token(path):
    assert resolve(path) == "moderation"
    for method in ("GET", "POST", "PUT", "DELETE"):
        assert not is_public(method, path)


@pytest.mark.parametrize(
    ("path", "service"),
    [
        # the group queue's route takes exactly one segment between prefix and suffix
        ("/api/v1/groups", "groups"),
        (f"/api/v1/groups/{SEGMENT}", "groups"),
        (f"/api/v1/groups/{SEGMENT}/members", "groups"),
        (f"/api/v1/groups/{SEGMENT}/members/reports", "groups"),
        (f"/api/v1/groups/{SEGMENT}/reports/", "groups"),
        (f"/api/v1/groups/{SEGMENT}/reports/{SEGMENT}", "groups"),
        (f"/api/v1/groups/{SEGMENT}/reportsx", "groups"),
        (f"/api/v1/groups/{SEGMENT}/x/reports", "groups"),
        ("/api/v1/groups/reports", "groups"),
        ("/api/v1/groups//reports", "groups"),
        ("/api/v1/groups/x/y/reports", "groups"),
        # moderation's prefixes own whole segments only
        ("/api/v1/me", "identity"),
        ("/api/v1/me/personas", "identity"),
        ("/api/v1/me/noticesx", "identity"),
        ("/api/v1/admin/accounts", "identity"),
        ("/api/v1/admin/code-of-conductx", "identity"),
        ("/api/v1/admin/moderation", "identity"),
        ("/api/v1/reportsx", None),
        ("/api/v1/code-of-conductx", None),
        ("/api/v1/moderation", None),
    ],
)
def test_the_paths_beside_moderations_keep_their_owner(path, service):
    assert resolve(path) == service
