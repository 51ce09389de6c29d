"""Handles: the names personas and groups are known and mentioned by (``@ada_lovelace``).

One rule for all of them: 3 to 30 letters, digits and underscores, kept in lowercase.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

from kit.text import Checked

HANDLE_CHARACTERS = r"[A-Za-z0-9_]{3,30}"
"""A handle as it may be written: in a request, or in a mention in a post's text."""

_LOWERCASE_HANDLE = re.compile(r"^[a-z0-9_]{3,30}$")


def _handle(value: str) -> str:
    value = value.lower()
    if not _LOWERCASE_HANDLE.match(value):
        raise ValueError("3 to 30 characters: lowercase letters, digits and underscores")
    return value


Handle = Annotated[
    str,
    Field(min_length=3, max_length=30, examples=["ada_lovelace"]),
    Checked(_handle, rf"^{HANDLE_CHARACTERS}$"),
]
"""A handle in a request: any case is accepted and the lowercase form is kept."""
