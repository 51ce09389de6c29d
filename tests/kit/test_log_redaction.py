"""No log line holds a secret query parameter's value (a stream ticket, decision 0035): the JSON
and plain lines, uvicorn's own lines (its access line too, were it turned back on) and the spans
a tracing process prints, read from real output."""

from __future__ import annotations

import copy
import io
import json
import logging
import logging.config
import os
import secrets
import sys
from collections.abc import Iterator

import httpx
import pytest
from uvicorn.config import LOGGING_CONFIG

from kit.logging import REDACTED, configure_logging, redact
from tests.gateway.processes import Process, Stub, stub
from tests.processes import free_port


def _ticket() -> str:
    return "gst_" + secrets.token_urlsafe(32)


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("GET /api/v1/stream?ticket=T HTTP/1.1", f"GET /api/v1/stream?ticket={REDACTED} HTTP/1.1"),
        ("/s?last_event_id=a.b&TICKET=T&x=1", f"/s?last_event_id=a.b&TICKET={REDACTED}&x=1"),
        ('{"url": "http://h/s?ticket=T"}', f'{{"url": "http://h/s?ticket={REDACTED}"}}'),
        ("?access_token=T#frag", f"?access_token={REDACTED}#frag"),
        ("?refresh_token=T;x=1", f"?refresh_token={REDACTED};x=1"),
        ("myticket=T x-ticket=T ticket_id=T", "myticket=T x-ticket=T ticket_id=T"),
        ("no query here", "no query here"),
    ],
)
def test_redact_replaces_the_value_of_each_secret_parameter_only(text, redacted):
    assert redact(text) == redacted


@pytest.mark.parametrize("as_json", [True, False])
def test_messages_and_tracebacks_are_redacted_in_json_and_plain_lines(capfd, as_json):
    ticket = _ticket()
    configure_logging("feed", as_json=as_json)
    log = logging.getLogger("tests.redaction")
    log.warning("could not open %s", f"http://feed/api/v1/stream?ticket={ticket}&last_event_id=x")
    try:
        raise ValueError(f"bad request target /api/v1/stream?ticket={ticket}")
    except ValueError:
        log.exception("failed")
    err = capfd.readouterr().err
    assert ticket not in err
    assert err.count(f"ticket={REDACTED}") >= 3  # the message, the error and its traceback
    if as_json:
        entries = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert entries[0]["message"].endswith(f"?ticket={REDACTED}&last_event_id=x")


@pytest.fixture
def uvicorn_output() -> Iterator[io.StringIO]:
    """uvicorn's own logging as it sets it up in a process before it builds the app, its two
    handlers writing to one buffer instead of the process's output."""
    output = io.StringIO()
    config = copy.deepcopy(LOGGING_CONFIG)
    for handler in config["handlers"].values():
        handler["stream"] = output
    logging.config.dictConfig(config)
    yield output
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()


def test_uvicorns_lines_are_redacted_and_its_access_line_is_off(uvicorn_output):
    ticket = _ticket()
    configure_logging("gateway")
    access = logging.getLogger("uvicorn.access")
    assert access.disabled
    access.disabled = False  # as if someone turned it back on
    try:
        # what uvicorn's protocols log for each request, the query string in the path
        access.info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/api/v1/stream?ticket={ticket}", "1.1", 200
        )
        logging.getLogger("uvicorn.error").warning("Invalid HTTP request: /api/v1/stream?ticket=%s", ticket)
    finally:
        access.disabled = True
    output = uvicorn_output.getvalue()
    assert ticket not in output
    assert f'"GET /api/v1/stream?ticket={REDACTED} HTTP/1.1" 200' in output
    assert f"Invalid HTTP request: /api/v1/stream?ticket={REDACTED}" in output


@pytest.fixture
def feed_stub() -> Iterator[Stub]:
    upstream = stub("feed")
    yield upstream
    upstream.stop()


def test_a_gateway_process_with_uvicorns_access_log_and_console_traces_logs_no_ticket(feed_stub, tmp_path):
    """The gateway under uvicorn with its default access log (the launcher turns it off; this
    one does not) and spans printed to its output: the ticket reaches feed, and no line holds it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "OTEL_"))}
    env.update({"GATEWAY_FEED_URL": feed_stub.url, "OTEL_TRACES_EXPORTER": "console"})
    args = [sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory", "--host", "127.0.0.1"]
    log = tmp_path / "gateway.log"
    process = Process([*args, "--port", str(port), "--loop", "asyncio"], env, log, "gateway").start()
    try:
        url = f"http://127.0.0.1:{port}"
        process.wait_until_answers(url + "/health/live")
        ticket = _ticket()
        params = {"ticket": ticket, "last_event_id": "a.b"}
        resp = httpx.get(f"{url}/api/v1/stream", params=params, timeout=10)
        assert resp.status_code == 200, resp.text
        assert "event: tick" in resp.text  # the stub feed answered: the gateway asked no bearer
    finally:
        process.stop()  # flushes the spans
    output = process.output()
    assert ticket not in output
    assert f"/api/v1/stream?ticket={REDACTED}&last_event_id=a.b" in output  # the span's URL
    assert '"path": "/api/v1/stream"' in output  # the access log's line, with its path alone
