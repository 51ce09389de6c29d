"""Outgoing mail: SMTP when a server is configured, else the process log (development)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import anyio.to_thread

from services.identity.settings import IdentitySettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str
    about: str = "an account"  # names the mail in the log, which never holds an address


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None: ...


class SmtpMailer:
    """Sends through the configured server; a failure is logged (never the body, which may
    carry a token, nor the credentials) and the mail is dropped: the person asks again."""

    def __init__(self, settings: IdentitySettings) -> None:
        assert settings.smtp_host
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.security = settings.smtp_security
        self.username = settings.smtp_username
        self.password = settings.smtp_password
        self.sender = settings.mail_from
        self.timeout = settings.smtp_timeout_seconds

    def _message(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.body)
        return message

    def _deliver(self, mail: Mail) -> None:
        context = ssl.create_default_context()
        server: smtplib.SMTP
        if self.security == "tls":
            server = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            server = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with server:
            if self.security == "starttls":
                server.starttls(context=context)
            if self.username and self.password is not None:
                server.login(self.username, self.password.get_secret_value())
            server.send_message(self._message(mail))

    async def send(self, mail: Mail) -> None:
        try:
            await anyio.to_thread.run_sync(self._deliver, mail)
        except (OSError, smtplib.SMTPException) as exc:
            log.error(
                "Mail about %s could not be sent through %s:%s: %s",
                mail.about,
                self.host,
                self.port,
                type(exc).__name__,
            )


class LogMailer:
    """Without an SMTP server (``make run``), the mail is written to the log so that the person
    running the suite can act on it."""

    async def send(self, mail: Mail) -> None:
        log.warning(
            "Mail about %s not sent (no SMTP server is configured: IDENTITY_SMTP_HOST). %s\n%s",
            mail.about,
            mail.subject,
            mail.body,
        )


def mailer_for(settings: IdentitySettings) -> Mailer:
    return SmtpMailer(settings) if settings.smtp_host else LogMailer()
