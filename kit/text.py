"""Validated string types for schemas: bounded, free of control characters (a NUL byte would
pass FastAPI and then break PostgreSQL), and https-only URLs."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_SINGLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_HANDLE = re.compile(r"^[a-z0-9_]{3,30}$")


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


def _handle(value: str) -> str:
    value = unicodedata.normalize("NFKC", value).lower()
    if not _HANDLE.match(value):
        raise ValueError("3 to 30 characters: lowercase letters, digits and underscores")
    return value


def _https_url(value: str) -> str:
    if _CONTROL_SINGLE.search(value) or " " in value:
        raise ValueError("must be a URL without spaces or control characters")
    if not re.match(r"^https://[^/@\s]+(/.*)?$", value, re.IGNORECASE):
        raise ValueError("must be an https:// URL without credentials")
    return value


SingleLineText = AfterValidator(_single_line)
MultiLineText = AfterValidator(_multi_line)
"""Use as ``Annotated[str, Field(max_length=100), SingleLineText]``."""

Handle = Annotated[
    str, Field(min_length=3, max_length=30, examples=["ada_lovelace"]), AfterValidator(_handle)
]
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
Tag = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[\w-]+$")]

LIKE_ESCAPE = "\\"


def like_escape(term: str) -> str:
    """``term`` lower-cased with LIKE's wildcards escaped, to match it literally."""
    return term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
