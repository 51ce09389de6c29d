"""The gateway's metrics are served on a port of their own, never on the public one."""

from __future__ import annotations

import socket

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from tests.helpers import auth, person
from tests.processes import free_ports
from tests.suite import build_suite


@pytest.mark.parametrize("path", ["/metrics", "/metrics/", "/api/v1/metrics", "/.well-known/%2e%2e/metrics"])
async def test_the_public_port_answers_404_problem_for_metrics(suite, path):
    await suite.client.get("/health/live")
    resp = await suite.client.get(path)
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"
    assert "http_requests" not in resp.text


async def test_metrics_are_served_on_their_own_port_and_stop_with_the_gateway(database_urls):
    async with build_suite(database_urls, gateway={"metrics_port": 0}) as suite:
        port = suite.gateway.state.metrics_port
        assert port
        token, persona_id = await person(suite.client, "ada")
        await suite.client.get(f"/api/v1/personas/{persona_id}", headers=auth(token))
        assert (await suite.client.get("/metrics")).status_code == 404
        async with httpx.AsyncClient(timeout=5) as scraper:
            resp = await scraper.get(f"http://127.0.0.1:{port}/metrics")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/plain")
        counted = {
            (sample.labels["route"], sample.labels["status"])
            for family in text_string_to_metric_families(resp.text)
            for sample in family.samples
            if sample.name == "http_requests_total"
        }
        assert ("/api/v1/personas", "200") in counted
        assert ("<unmatched>", "404") in counted  # the public port's refusal of /metrics
        assert persona_id not in resp.text
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the metrics port still answers"


def test_the_metrics_listener_is_off_by_default_and_binds_loopback_when_on():
    settings = GatewaySettings()
    assert settings.metrics_port is None
    assert settings.metrics_host == "127.0.0.1"


async def test_a_busy_metrics_port_stops_the_gateway_with_a_clear_message():
    (port,) = free_ports(1)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        app = create_gateway(GatewaySettings(metrics_port=port))
        with pytest.raises(RuntimeError, match=f"Cannot serve metrics on 127.0.0.1:{port}"):
            async with app.router.lifespan_context(app):
                pass
