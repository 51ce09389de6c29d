"""The benchmark's profile summary charges each sample to the part that ran it, and its
steady-rate generator sends at the rate asked, timing each request from when it was due."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import rate
from bench.profile import OTHER, Profile

OUTER = "_run_module_as_main (<frozen runpy>:198);run (uvicorn/server.py:69);__call__ (kit/middleware.py:66)"
STACKS = (
    f"{OUTER};execute (sqlalchemy/orm/session.py:2306) 6\n"
    f"{OUTER};match (re/__init__.py:166) 3\n"
    "_run_module_as_main (<frozen runpy>:198);write (asyncio/selector_events.py:1057) 1\n"
    "select (selectors.py:468) 2\n"
    "not a stack\n"
)


def test_samples_are_charged_to_the_innermost_known_part() -> None:
    profile = Profile.read(STACKS)
    assert profile.samples == 12  # the line without a count is not a sample
    # SQLAlchemy ran the statement; the standard library's regex counts for the suite code
    # that called it; the sockets and the selector are the event loop's.
    assert profile.parts == {"sqlalchemy": 6, "suite: kit": 3, "event loop (asyncio)": 3}
    assert OTHER not in profile.parts
    assert profile.functions.most_common(1) == [("execute (orm/session.py:2306)", 6)]
    summary = profile.summary(ms_per_request=2.4)
    assert summary["parts"]["sqlalchemy"] == {"share": 0.5, "ms_per_request": 1.2}
    assert summary["parts"]["suite: kit"] == {"share": 0.25, "ms_per_request": 0.6}
    assert "ms_per_request" not in profile.summary(None)["parts"]["sqlalchemy"]


def test_a_stack_of_no_known_part_is_other() -> None:
    profile = Profile.read("main (app.py:1);work (lib.py:2) 4\n")
    assert profile.parts == {OTHER: 4}


class _Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    delay = 0.05
    seen: list[float] = []  # shared by the handler's instances

    def do_POST(self) -> None:  # http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        _Slow.seen.append(time.perf_counter())
        time.sleep(self.delay)
        status = 201 if self.path == "/ok" else 500
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Slow.seen = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_requests_go_at_the_rate_and_wait_no_answer(server: str) -> None:
    figure = rate.at_rate(server + "/ok", "token", {"body": "x"}, rate=40, seconds=1.0)
    assert figure["requests"] == 40 and figure["errors"] == 0
    # Each request took the server's 50 ms at least, counted from when it was due.
    assert figure["p50_ms"] >= 50 and figure["max_ms"] >= figure["p99_ms"] >= figure["p50_ms"]
    # Open loop: the requests were sent every 25 ms (0.975 s from first to last), not one
    # after another's answer, which would take 40 x 50 ms = 2 s at least. The margin is for a
    # busy machine (1.54 s seen with the rest of the tests running beside it).
    span = _Slow.seen[-1] - _Slow.seen[0]
    assert 0.8 <= span < 1.9, span


def test_answers_that_are_not_2xx_are_errors(server: str) -> None:
    figure = rate.at_rate(server + "/broken", "token", {"body": "x"}, rate=20, seconds=0.5)
    assert figure["requests"] == 10 and figure["errors"] == 10
