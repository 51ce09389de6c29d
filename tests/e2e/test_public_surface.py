"""Under `make run` (the launcher, real processes): the gateway's port serves no metrics and
sends no client to a service's own address; the metrics listen on loopback, on their own port."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e
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
    with httpx.Client(base_url=running.url(), timeout=10) as client:
        assert client.get("/health/live").status_code == 200
        public = client.get("/metrics")
        assert public.status_code == 404
        assert public.headers["content-type"] == "application/problem+json"
        slashed = client.get("/scim/v2/Users/")
        assert slashed.status_code == 404
        assert "location" not in slashed.headers
        for port in (running.ports["identity"], running.ports["feed"], running.ports["groups"]):
            assert f":{port}" not in str(slashed.headers) + slashed.text
    scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
    assert scraped.status_code == 200
    assert 'http_requests_total{method="GET",route="/health/live",status="200"}' in scraped.text
    assert _listening_addresses(metrics_port) == {LOOPBACK}
