"""Validated string types for schemas: bounded, free of control characters (a NUL byte would
pass FastAPI and then break PostgreSQL), and https-only URLs."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_SINGLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _single_line(value: str) -> str:
    if _CONTROL_SINGLE.search(value):
        raise ValueError("must not contain control characters or line breaks")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _multi_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _multi_line_or_empty(value: str) -> str:
    return value if value == "" else _multi_line(value)


def _https_url(value: str) -> str:
    if _CONTROL_SINGLE.search(value) or " " in value:
        raise ValueError("must be a URL without spaces or control characters")
    if not re.match(r"^https://[^/@\s]+(/.*)?$", value, re.IGNORECASE):
        raise ValueError("must be an https:// URL without credentials")
    return value


@dataclass(frozen=True)
class Checked:
    """A check run after the string's own constraints, published as a JSON Schema pattern
    so that clients (and contract tests) know what the check accepts."""

    check: Callable[[str], str]
    pattern: str

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self.pattern
        return json_schema


_SINGLE = r"[^\x00-\x1f\x7f-\x9f]"
_MULTI = r"[^\x00-\x08\x0b-\x1f\x7f-\x9f]"
SingleLineText = Checked(_single_line, rf"^{_SINGLE}*[^\x00-\x1f\x7f-\x9f\s]{_SINGLE}*$")
MultiLineText = Checked(_multi_line, rf"^{_MULTI}*[^\x00-\x08\x0b-\x1f\x7f-\x9f\s]{_MULTI}*$")
"""Use as ``Annotated[str, Field(max_length=100), SingleLineText]``: no control characters
(``MultiLineText`` allows tab and line feed), not blank."""
MultiLineTextOrEmpty = Checked(_multi_line_or_empty, rf"^$|{MultiLineText.pattern}")
"""``MultiLineText``, or the empty string: one string type where "no text" is allowed (a
post of files alone), rather than a union that generated clients cannot parse."""

HttpsUrl = Annotated[
    str,
    Field(
        max_length=500,
        # printable ASCII only: an internationalised host is sent in its punycode form
        pattern=r"^[Hh][Tt][Tt][Pp][Ss]://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$",
        examples=["https://intranet.example/avatar.png"],
    ),
    AfterValidator(_https_url),
]


def _iso_text(value: Any) -> Any:
    """Dates and times arrive as ISO 8601 strings; a number is not silently read as a Unix
    time (pydantic's lax mode would)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("must be an ISO 8601 string")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_text)]
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_text)]


def _in_utc(value: datetime) -> datetime:
    """In UTC (a time without offset is read as UTC); a time whose offset takes it past year 1
    or 9999 is refused, not a 500 further on."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once in UTC") from None


UtcDateTime = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_in_utc)]
"""An ISO 8601 time, given back in UTC."""
Tag = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[\w-]+$")]

LIKE_ESCAPE = "\\"


def like_escape(term: str) -> str:
    """``term`` lower-cased with LIKE's wildcards escaped, to match it literally."""
    return term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def storable(value: str) -> bool:
    """Whether both databases can store ``value``: PostgreSQL refuses a NUL character in text,
    and no driver can encode an unpaired surrogate (what a JSON ``\\ud800`` escape gives)."""
    return _UNSTORABLE.search(value) is None
