"""The fields every answer carries once (RFC 9110 §5.3), over the real processes: one Date,
the gateway's own when it forwards, and no Server header advertising what runs behind."""

from __future__ import annotations

import httpx
import pytest

from launcher.topology import SERVICES
from tests.processes import Running

pytestmark = pytest.mark.e2e


def _once(resp: httpx.Response) -> None:
    assert len(resp.headers.get_list("date")) == 1, resp.headers
    assert "server" not in resp.headers, resp.headers


@pytest.mark.parametrize(
    "path",
    [
        "/health/ready",  # the gateway's own answer
        "/api/v1/timelines/home",  # feed's 401, forwarded
        "/api/v1/groups/00000000-0000-0000-0000-000000000000",  # groups' 401, forwarded
        "/.well-known/jwks.json",  # identity's 200, forwarded
    ],
)
def test_an_answer_through_the_gateway_has_one_date_and_no_server(running: Running, path: str) -> None:
    resp = httpx.get(running.url() + path, timeout=10)
    assert resp.status_code in (200, 401), resp.text
    _once(resp)


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_advertises_its_server(running: Running, service: str) -> None:
    _once(httpx.get(running.url(service) + "/health/ready", timeout=10))
