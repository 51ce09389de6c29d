"""Under `make run` (the launcher, real processes): the gateway's port serves no metrics and
sends no client to a service's own address; the metrics listen on loopback, on their own port."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from launcher.topology import SERVICES
from tests.helpers import auth, unique
from tests.mailbox import confirm
from tests.processes import LIMITS

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"
LISTEN = "0A"
LOOPBACK = "0100007F"


def _listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as the kernel writes them) that listen on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == LISTEN and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_the_public_port_serves_no_metrics_and_no_redirect_to_a_service(running):
    metrics_port = running.metrics_port
    assert f"Metrics: http://127.0.0.1:{metrics_port}/metrics" in "".join(running.output)
    with httpx.Client(base_url=running.url(), timeout=10, limits=LIMITS) as client:
        assert client.get("/health/live").status_code == 200
        public = client.get("/metrics")
        assert public.status_code == 404
        assert public.headers["content-type"] == "application/problem+json"
        slashed = client.get("/scim/v2/Users/")
        assert slashed.status_code == 404
        assert "location" not in slashed.headers
        for service in SERVICES:
            port = running.ports[service]
            assert f":{port}" not in str(slashed.headers) + slashed.text
    scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
    assert scraped.status_code == 200
    assert 'http_requests_total{method="GET",route="/health/live",status="200"}' in scraped.text
    assert _listening_addresses(metrics_port) == {LOOPBACK}


def test_a_moderation_path_with_a_trailing_slash_names_no_services_address(running):
    """Moderation's paths sit under identity's and groups' prefixes: its answers, too, are 404
    problems without a redirect to its own port."""
    handle = unique("ada")
    email = f"{handle}@agency.example"
    with httpx.Client(base_url=running.url(), timeout=10, limits=LIMITS) as client:
        body = {"email": email, "password": PASSWORD, "handle": handle, "display_name": "Ada"}
        assert client.post("/api/v1/accounts", json=body).status_code == 202
        confirm(client, running.token_for(handle), PASSWORD)
        form = {"grant_type": "password", "username": email, "password": PASSWORD}
        token = client.post("/api/v1/auth/token", data=form).json()["access_token"]
        for path in ("/api/v1/reports/", "/api/v1/me/notices/", "/api/v1/code-of-conduct/"):
            resp = client.get(path, headers=auth(token))
            assert resp.status_code == 404, (path, resp.text)
            assert resp.headers["content-type"] == "application/problem+json"
            assert "location" not in resp.headers
            for service in SERVICES:
                assert f":{running.ports[service]}" not in str(resp.headers) + resp.text
