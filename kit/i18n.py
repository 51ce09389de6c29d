"""The languages problems answer in: English, the language of the code, and French, from the
catalogue ``kit/locales/fr.po`` (docs/i18n.md).

A problem's detail and title are written in English where they are raised; that text is the
message id. A detail with values is a template with named placeholders (``{limit}``) and its
values apart, so that the catalogue holds one sentence per message and the values go into
the translated template as given. ``negotiate`` picks the language from ``Accept-Language``;
nothing in it can fail a request: what it cannot read counts as no preference (English).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from starlette.types import Scope

ENGLISH = "en"
FRENCH = "fr"
LANGUAGES = (ENGLISH, FRENCH)
CATALOGUES = Path(__file__).parent / "locales"

# RFC 9110 §12.5.4: a language range (RFC 4647 §2.1) and an optional weight.
_RANGE = re.compile(r"^(\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)$")
_WEIGHT = re.compile(r"^[qQ]=(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")
# A header longer than this names more ranges than any browser sends: the rest is ignored.
_MAX_RANGES = 32


@lru_cache(maxsize=512)
def negotiate(accept_language: str | None) -> str:
    """The language among ``LANGUAGES`` that the header prefers: the range of highest weight
    (the first of equal ones) whose primary subtag is one of them, so that ``fr-CA`` is
    French. ``*``, unknown languages, weights of 0 and elements that do not parse give no
    preference, which is English."""
    if not accept_language:
        return ENGLISH
    ranges: list[tuple[float, str]] = []
    for element in accept_language.split(",", _MAX_RANGES)[:_MAX_RANGES]:
        tag, *parameters = (part.strip() for part in element.split(";"))
        weight = 1.0
        if not _RANGE.match(tag) or len(parameters) > 1:
            continue
        if parameters:
            if not (match := _WEIGHT.match(parameters[0])):
                continue
            weight = float(match.group(1))
        if weight > 0:
            ranges.append((weight, tag.split("-", 1)[0].lower()))
    ranges.sort(key=lambda weighted: -weighted[0])  # stable: the first of equal weights first
    for _, primary in ranges:
        if primary in LANGUAGES:
            return primary
        if primary == "*":
            return ENGLISH
    return ENGLISH


def scope_language(scope: Scope) -> str:
    """The language of a request, for pure-ASGI code that answers without a ``Request``."""
    for key, value in scope.get("headers", []):
        if key == b"accept-language":
            return negotiate(value.decode("latin-1"))
    return ENGLISH


def language_headers(language: str) -> dict[str, str]:
    """The headers of an answer written in ``language``: which one it is, and that it depends
    on ``Accept-Language`` (a cache must not give a French answer to an English request)."""
    return {"Content-Language": language, "Vary": "Accept-Language"}


def with_language_headers(headers: Mapping[str, str], language: str) -> dict[str, str]:
    """``headers`` with those of ``language_headers``, ``Accept-Language`` added to a ``Vary``
    already there."""
    out = dict(headers)
    vary = next((name for name in out if name.lower() == "vary"), None)
    if vary is None:
        out.update(language_headers(language))
    else:
        out[vary] = f"{out[vary]}, Accept-Language"
        out["Content-Language"] = language
    return out


def render(template: str, params: Mapping[str, Any] | None) -> str:
    """A template with its values; a text without values is its own rendering (its braces,
    if any, are not placeholders)."""
    return template.format_map(params) if params else template


def translate(template: str, language: str, params: Mapping[str, Any] | None = None) -> str:
    """``template`` in ``language``, with its values. A message the catalogue lacks answers in
    English rather than fail (tests/kit/test_i18n.py keeps the catalogue complete)."""
    translated = catalogue(language).get(template, template) if language != ENGLISH else template
    try:
        return render(translated, params)
    except (KeyError, IndexError, ValueError):
        return render(template, params)


@cache
def catalogue(language: str) -> Mapping[str, str]:
    """The translations of ``language``'s PO file, message id to text; fuzzy and untranslated
    entries left out. Babel is imported here, once, by the first process that asks."""
    if language == ENGLISH:
        return {}
    from babel.messages.pofile import read_po

    with (CATALOGUES / f"{language}.po").open("rb") as po:
        messages = read_po(po, locale=language)
    return {
        str(message.id): str(message.string)
        for message in messages
        if message.id and isinstance(message.id, str) and message.string and not message.fuzzy
    }


def load(languages: Iterable[str] = LANGUAGES) -> None:
    """Reads the catalogues now, so that the first translated answer does not pay for it."""
    for language in languages:
        catalogue(language)
