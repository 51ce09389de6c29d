"""Structured JSON logs. Nothing secret is logged: the access log records method, path,
status and timing, and what the caller's principal offers (``caller_fields``), never headers,
query strings or bodies."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


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
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
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
        return json.dumps(entry, ensure_ascii=False)


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
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log prints the query string, which may carry a cursor or worse.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every URL it requests at INFO, query strings included.
    logging.getLogger("httpx").setLevel(logging.WARNING)
