"""Structured JSON logs. Nothing secret is logged: the access log records method, path,
status and timing, and what the caller's principal offers (``caller_fields``), never headers,
query strings or bodies. Where a URL or a query still reaches a log line (a message, an
error, uvicorn's own lines), the value of every query parameter that carries a credential
(``SECRET_PARAMETERS``) is replaced by ``[redacted]``, in every process."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

SECRET_PARAMETERS = ("ticket", "access_token", "refresh_token")
"""Query parameters whose values are credentials: a one-time ticket that opens a stream
without an Authorization header, and OAuth tokens (RFC 6750 §2.3 allows one in a query)."""
REDACTED = "[redacted]"
_SECRET_VALUE = re.compile(
    r"(?i)(?<![\w.-])(" + "|".join(map(re.escape, SECRET_PARAMETERS)) + r")=[^&;\s\"'#\\]*"
)


def redact(text: str) -> str:
    """``text`` with the value of each secret query parameter (``ticket=…``) redacted, wherever
    it stands: in a URL, a query string, a message or a traceback."""
    return _SECRET_VALUE.sub(rf"\1={REDACTED}", text) if "=" in text else text


class RedactSecrets(logging.Filter):
    """Redacts secret query parameters in a record, for handlers whose formatter is not this
    module's (uvicorn's). The arguments are redacted one by one, since uvicorn's access line is
    built from them (the path with its query is one); a message that still holds a secret once
    formatted (``"ticket=%s"``) is replaced by its redacted text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: logging reports it as such
            return True
        if (redacted := redact(message)) != message:
            record.msg, record.args = redacted, None
        return True


_REDACT_SECRETS = RedactSecrets()


def caller_fields(principal: object) -> Mapping[str, object]:
    """What the access log records of the caller: the fields the request's principal offers
    through a ``log_fields()`` method (a field whose value is None is left out); none when
    there is no principal, or it offers nothing."""
    log_fields = getattr(principal, "log_fields", None)
    if not callable(log_fields):
        return {}
    fields: Mapping[str, object] = log_fields()
    return fields


class JSONFormatter(logging.Formatter):
    """One JSON object per line, its time in UTC (``2026-12-06T20:52:53.487Z``)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self._second = -1
        self._stamp = ""

    def _time(self, record: logging.LogRecord) -> str:
        # The second's text is made once a second, not for every line (the access log writes
        # one per request).
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._stamp}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key in ("method", "path", "status", "duration_ms"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        caller: Mapping[str, object] = getattr(record, "caller", None) or {}
        for key, value in caller.items():
            if value is not None:
                entry.setdefault(key, value)
        if record.exc_info:
            entry["error"] = repr(record.exc_info[1])[:500]
            entry["traceback"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """Plain lines (``log_json=false``), secret query parameters redacted as in JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(service: str, level: str = "INFO", *, as_json: bool = True) -> None:
    handler = _StderrHandler()
    if as_json:
        handler.setFormatter(JSONFormatter(service))
    else:
        handler.setFormatter(TextFormatter(f"%(asctime)s {service} %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # No line shows the caller's file and line, or the thread's and process's names: each
    # record would look them up (the stack walk alone is a tenth of an access line's cost).
    # The logging HOWTO's "Optimization" names these switches.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # uvicorn's own access log prints the query string, which may carry a cursor or worse.
    logging.getLogger("uvicorn.access").disabled = True
    # uvicorn's loggers write through handlers of their own (set up before the app is built):
    # whatever they print, and the access line if someone turns it back on, is redacted too.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        for uvicorn_handler in logging.getLogger(name).handlers:
            uvicorn_handler.addFilter(_REDACT_SECRETS)
    # httpx logs every URL it requests at INFO, query strings included.
    logging.getLogger("httpx").setLevel(logging.WARNING)
