"""What the Python flow shares with the TypeScript ones, written once for Python: the steps and
their report, the mailed token read from the suite's log, and a webhook receiver that checks
Standard Webhooks signatures. The TypeScript flows have the same in ``ts/common.ts``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
LOGGED = re.compile(r"Mail about the registration of @(\w+) not sent .*?Token: ([A-Za-z0-9_-]+)", re.DOTALL)
SIGNATURE_TOLERANCE_SECONDS = 300


def eventually(check: Callable[[], T | None], what: str, timeout: float = 30, interval: float = 0.2) -> T:
    """``check()``'s first true result; fails naming ``what`` when ``timeout`` passes first.
    Events reach the other services about a second after the change that caused them."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def mailed_token(log: Path, handle: str) -> str:
    """The newest verification token the suite logged for the registration of ``handle``."""

    def newest() -> str | None:
        found = [token for about, token in LOGGED.findall(log.read_text(errors="replace")) if about == handle]
        return found[-1] if found else None

    return eventually(newest, f"the verification mail of @{handle}")


@dataclass
class Steps:
    """Named steps run in order; a step runs only when the steps it needs passed. Each prints
    one line (PASS, FAIL with the reason, or SKIP with the failed step it needed)."""

    language: str
    results: dict[str, str] = field(default_factory=dict)

    def run(self, name: str, step: Callable[[], None], needs: tuple[str, ...] = ()) -> None:
        missing = [n for n in needs if self.results.get(n) != "pass"]
        if missing:
            self.results[name] = "skip"
            print(f"[{self.language}] SKIP {name} (needs {', '.join(missing)})", flush=True)
            return
        try:
            step()
        except Exception as exc:  # a failed step is reported, and the others still run
            self.results[name] = "fail"
            where = traceback.extract_tb(exc.__traceback__)[-1]
            print(f"[{self.language}] FAIL {name}: {exc} (line {where.lineno})", flush=True)
            return
        self.results[name] = "pass"
        print(f"[{self.language}] PASS {name}", flush=True)

    @property
    def failed(self) -> bool:
        return any(result != "pass" for result in self.results.values())


def verify_signature(secret: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The event of a Standard Webhooks message, once its signature is checked with
    ``secret`` (``whsec_`` and base64) and its timestamp is recent."""
    message_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > SIGNATURE_TOLERANCE_SECONDS:
        raise AssertionError(f"webhook timestamp {timestamp} is not recent")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in headers["webhook-signature"].split() if s.startswith("v1,")]
    if not any(hmac.compare_digest(expected, s) for s in offered):
        raise AssertionError("no webhook signature matches the secret")
    event: dict[str, Any] = json.loads(body)
    return event


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every webhook message it is sent."""

    def __init__(self) -> None:
        received: list[tuple[dict[str, str], bytes]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def event_about(self, secret: str, event_type: str, subjects: set[str]) -> dict[str, Any] | None:
        """A verified event of ``event_type`` about one of ``subjects``, once one has arrived."""
        for headers, body in list(self.received):
            event = verify_signature(secret, headers, body)
            if event.get("type") == event_type and event.get("subject") in subjects:
                return event
        return None
