"""Parsing mentions and tags out of a post's text."""

from __future__ import annotations

from services.feed.content import MAX_MENTIONS, MAX_TAGS, parse_handles, parse_tags


def test_tags_are_case_and_form_insensitive_and_unique():
    assert parse_tags("#Cloud #cloud #CLOUD #\uff23\uff4c\uff4f\uff55\uff44") == ["cloud"]
    assert parse_tags("#move-2026, #été!") == ["move-2026", "été"]


def test_things_that_only_look_like_tags_are_not_tags():
    assert parse_tags("https://intranet.example/page#anchor &#39; a#b ## #_x #-x") == []


def test_mentions_skip_email_addresses_and_repeat_once():
    assert parse_handles("@Ada, mail ada@agency.example or @ada again; @bo is too short") == ["ada"]


def test_parsing_is_bounded():
    assert len(parse_tags(" ".join(f"#t{i}" for i in range(50)))) == MAX_TAGS
    assert len(parse_handles(" ".join(f"@user{i}" for i in range(50)))) == MAX_MENTIONS
