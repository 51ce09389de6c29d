"""Prometheus metrics per route template: count, latency histogram and status, on the gateway
and on any app that installs ``kit.metrics``."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kit.metrics import install_metrics
from services.groups.app import create_app as create_groups
from services.groups.settings import GroupsSettings
from tests.helpers import auth, person


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def _exposed(app: FastAPI) -> str:
    """What the metrics listener would serve for ``app`` (the gateway's public port serves none)."""
    return generate_latest(app.state.metrics.registry).decode()


def _count(text: str, method: str, route: str, status: str) -> float:
    key = (("method", method), ("route", route), ("status", status))
    return _samples(text, "http_requests_total").get(key, 0.0)


async def test_requests_are_counted_and_timed_per_route_template_not_per_path():
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def get_thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    install_metrics(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for n in range(3):
            assert (await client.get(f"/things/{n}")).status_code == 200
        assert (await client.get("/things/not-a-number")).status_code == 422
        assert (await client.get(f"/nowhere/{uuid.uuid4()}")).status_code == 404
        assert (await client.post("/things/1")).status_code == 405
        for invented in ("BREW", "WHEN"):  # a method of the client's own is counted as OTHER
            assert (await client.request(invented, "/things/1")).status_code == 405
        await client.get("/metrics")
        resp = await client.get("/metrics")
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert _count(text, "GET", "/things/{thing_id}", "200") == 3
    assert _count(text, "GET", "/things/{thing_id}", "422") == 1
    assert _count(text, "POST", "/things/{thing_id}", "405") == 1
    assert _count(text, "OTHER", "/things/{thing_id}", "405") == 2
    assert "BREW" not in text and "WHEN" not in text
    assert _count(text, "GET", "<unmatched>", "404") == 1
    routes = {dict(k)["route"] for k in _samples(text, "http_requests_total")}
    assert routes == {"/things/{thing_id}", "<unmatched>"}  # no raw path, no /metrics
    buckets = _samples(text, "http_request_duration_seconds_count")
    assert buckets[(("method", "GET"), ("route", "/things/{thing_id}"))] == 4


async def test_each_app_has_its_own_registry():
    first, second = FastAPI(), FastAPI()
    install_metrics(first)
    install_metrics(second)  # a shared registry would refuse the second set of series
    assert first.state.metrics.registry is not second.state.metrics.registry


async def test_the_gateway_labels_proxied_requests_with_the_upstream_route_template(suite):
    token, persona_id = await person(suite.client, "ada")
    await suite.client.get("/openapi.json")  # the gateway learns the templates from the document
    await suite.client.get(f"/api/v1/personas/{persona_id}", headers=auth(token))
    await suite.client.get(f"/api/v1/posts/{persona_id}")
    text = _exposed(suite.gateway)
    assert _count(text, "GET", "/api/v1/personas/{persona_id}", "200") == 1
    assert _count(text, "GET", "/api/v1/posts/{post_id}", "401") == 1
    assert _count(text, "POST", "/api/v1/auth/", "200") == 1  # signed in before: the route prefix
    assert persona_id not in text


async def test_before_the_gateway_knows_the_templates_it_labels_by_route_prefix(suite):
    resp = await suite.client.get(f"/api/v1/posts/{uuid.uuid4()}")
    assert resp.status_code == 401
    # moderation's group queue, under groups' prefix, is labelled apart from groups' paths
    for path in (f"/api/v1/groups/{uuid.uuid4()}/reports", f"/api/v1/groups/{uuid.uuid4()}"):
        assert (await suite.client.get(path)).status_code == 401
    text = _exposed(suite.gateway)
    assert _count(text, "GET", "/api/v1/posts", "401") == 1
    assert _count(text, "GET", "/api/v1/groups/{id}/reports", "401") == 1
    assert _count(text, "GET", "/api/v1/groups", "401") == 1


async def test_a_service_app_with_metrics_labels_its_own_route_templates(database_urls):
    app = create_groups(GroupsSettings(internal_token="x", database_url=database_urls["groups"]))
    install_metrics(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://groups") as client:
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get(f"/api/v1/groups/{uuid.uuid4()}")).status_code == 401
        text = (await client.get("/metrics")).text
    assert _count(text, "GET", "/health/live", "200") == 1
    assert _count(text, "GET", "/api/v1/groups/{group_id}", "401") == 1


async def test_the_gateways_own_refusals_are_labelled_by_its_catch_all_route(suite):
    assert (await suite.client.get("/api/v1/nowhere")).status_code == 404
    assert (await suite.client.request("PROPFIND", "/api/v1/posts")).status_code == 405
    text = _exposed(suite.gateway)
    assert _count(text, "GET", "/api/v1/{path}", "404") == 1
    assert _count(text, "OTHER", "/api/v1/{path}", "405") == 1  # WebDAV's, not HTTP's
    assert _count(text, "GET", "<unmatched>", "404") == 0
