"""The mails identity sends, read the way a person would: from the log when no SMTP server is
configured (the default, and ``make run``), or from a real SMTP server on loopback."""

from __future__ import annotations

import email
import email.policy
import logging
import re
import threading
import time
from collections.abc import Iterable
from email.message import EmailMessage
from typing import Any

import httpx
from aiosmtpd.controller import Controller

LOGGED = re.compile(r"Mail about the registration of @(\w+) not sent .*?Token: ([A-Za-z0-9_-]+)", re.DOTALL)
TOKEN = re.compile(r"Token: ([A-Za-z0-9_-]+)")
MAIL_LOGGER = "services.identity.mail"


def token_in_log(lines: Iterable[str], handle: str) -> str | None:
    """The newest token mailed for the registration of ``handle`` among log lines (JSON or
    plain; the log names the handle, never the address)."""
    found = None
    for line in lines:
        for about, token in LOGGED.findall(line):
            if about == handle:
                found = token
    return found


def wait_for_logged_token(lines: list[str], handle: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        token = token_in_log(list(lines), handle)
        if token is not None:
            return token
        time.sleep(0.05)
    raise AssertionError(f"no verification mail for @{handle} in the log")


class LoggedMail(logging.Handler):
    """Keeps the newest token the in-process identity wrote to its log, per handle."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.tokens: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        for about, token in LOGGED.findall(record.getMessage()):
            self.tokens[about] = token

    def take(self, handle: str) -> str | None:
        return self.tokens.pop(handle, None)


def logged_mail() -> LoggedMail:
    """The one handler on identity's mail logger (installed once per test process)."""
    logger = logging.getLogger(MAIL_LOGGER)
    for handler in logger.handlers:
        if isinstance(handler, LoggedMail):
            return handler
    handler = LoggedMail()
    logger.addHandler(handler)
    return handler


class _Collect:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.box.lock:
            self.box.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"


class Mailbox:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it receives."""

    def __init__(self, port: int, **controller: Any) -> None:
        self.port = port
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.lock = threading.Lock()
        self.controller = Controller(_Collect(self), hostname="127.0.0.1", port=port, **controller)

    def __enter__(self) -> Mailbox:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def settings(self) -> dict[str, Any]:
        """Identity's settings that send through this server."""
        return {"smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_security": "none"}

    def env(self) -> dict[str, str]:
        return {
            "IDENTITY_SMTP_HOST": "127.0.0.1",
            "IDENTITY_SMTP_PORT": str(self.port),
            "IDENTITY_SMTP_SECURITY": "none",
        }

    def messages_to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [message for to, message in self.received if address in to]

    def token_for(self, address: str, timeout: float = 30) -> str:
        """The newest token mailed to ``address``, waiting for it to arrive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in reversed(self.messages_to(address)):
                body = message.get_body(preferencelist=("plain",))
                found = TOKEN.search(body.get_content() if body is not None else "")
                if found:
                    return found.group(1)
            time.sleep(0.05)
        raise AssertionError(f"no verification mail for {address}")


def confirm(client: httpx.Client, token: str, password: str) -> None:
    """Sends the mailed token back, as the person does after registering."""
    resp = client.post("/api/v1/accounts/verification", json={"token": token, "password": password})
    assert resp.status_code == 200, resp.text
