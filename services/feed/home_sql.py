"""The home timeline's SQL on PostgreSQL, in one place: the pages (from the reader's inbox, or
read on demand), the inbox's fill and fan-out, the reader's sources, and each post's JSON
document (decisions 0011 and 0012 say why it is hand-written).

Who sees what on this path is written here once, as fragments that every statement is put
together from:

- ``_kept``: what a reader's inbox may hold: posts of the reader's context, not deleted. Only
  what is final belongs here, since an inbox is not refilled when a post changes (a post
  moderation removed is deleted, and its restore fans it out again);
- ``_shown``: what a page shows: kept posts whose author is active (an author deactivated may
  come back, so pages filter it rather than the inbox), that moderation left alone (the
  reader's own hidden and held posts aside), outside a group moderation hid or removed;
- ``_from_sources``: the home rule proper: a post to the organisation or to followers by the
  reader or one of their followees, or a post in one of the reader's groups. Fan-out writes its
  converse (a new post goes to the inboxes of its author and the author's followers, or of the
  group's members: ``FAN_OUT_BY_AUTHOR``, ``FAN_OUT_BY_GROUP``), with the same audiences
  (``BY_AUTHOR``, ``BY_GROUP``);
- ``_not_pinned`` and ``_announcements``: announcements still pinned lead the first page
  instead of taking their place, but a limited author's.

A condition that must hide posts from readers is added to ``_shown`` here (and to ``_kept``
too if it is final), and to ``timelines.shown`` for every other read (SQLite's home timeline,
the event stream, the other timelines, search, single posts, their comments and the
notifications about them); ``tests/feed/test_home_rules.py`` compares the two on generated
worlds, and each item's JSON with ``schemas.post_public``'s.

The statements are put together from this module's constants only: every value is a bound
parameter, hence the exemption from the SQL-injection lint (S608) in pyproject.toml.
"""

from __future__ import annotations

from pydantic import BaseModel

from services.feed.models import REACTION_KINDS
from services.feed.schemas import AuthorPublic, PostPublic, ReactionsPublic
from services.feed.timelines import AUTHOR_ONLY, BY_AUTHOR, BY_GROUP, MAX_PINNED

# The columns of a page's rows, and what ``part`` says a row is.
PART, ID, DOC = "part", "id", "doc"
REGULAR = "post"  # a post of the page, newest first
PINNED = "pinned"  # a pinned announcement, leading a first page
FLOOR = "floor"  # from the inbox's pages only, last: ``id`` is the inbox's floor (NULL: none)


# Who sees what -----------------------------------------------------------------------------------


def _kept(context: str) -> str:
    return f"p.deleted_at IS NULL AND p.context = {context}"


_AUTHOR_ONLY = ", ".join(f"'{state}'" for state in AUTHOR_ONLY)


# An author's status is looked up per candidate row (a subplan): joined instead, a reader with
# few sources got a hash join over every persona. So is a group post's group, by its key.
def _shown(context: str, reader: str = "$1") -> str:
    """``reader`` is the placeholder of the reader, who alone sees their hidden and held posts
    (``$1`` in every page statement)."""
    return f"""{_kept(context)}
      AND coalesce((SELECT a.status = 'active' FROM persona_replica a WHERE a.id = p.author_id), true)
      AND (p.moderation IS NULL OR (p.moderation IN ({_AUTHOR_ONLY}) AND p.author_id = {reader}))
      AND (p.group_id IS NULL OR NOT EXISTS (SELECT 1 FROM group_replica g
           WHERE g.id = p.group_id AND g.moderation IS NOT NULL))"""


def _from_sources(authors: str, groups: str) -> str:
    """``authors`` (the reader and their followees) and ``groups`` are uuid arrays, so that the
    planner sees how many there are (decision 0006)."""
    by_author = ", ".join(f"'{audience}'" for audience in BY_AUTHOR)
    return f"""((p.audience IN ({by_author}) AND p.author_id = ANY({authors}))
           OR (p.audience = '{BY_GROUP}' AND p.group_id = ANY({groups})))"""


def _not_pinned(now: str) -> str:
    return f"(p.pinned_until IS NULL OR p.pinned_until <= {now})"


def _announcements(now: str) -> str:
    return f"""p.audience = 'organisation' AND p.pinned_until > {now}
      AND NOT coalesce((SELECT a.limited FROM persona_replica a WHERE a.id = p.author_id), false)"""


# Each post as the JSON text of PostPublic ------------------------------------------------------


def sql_timestamp(column: str) -> str:
    """A timestamptz as pydantic writes it: ``2026-01-02T03:04:05Z``, with ``.ffffff`` before the
    ``Z`` only when there are microseconds; NULL stays NULL."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN date_trunc('second', {column}) = {column}"
        f" THEN '' ELSE to_char({utc}, '.US') END || 'Z'"
    )


# Each post's JSON is written by concatenating text, every value already JSON. Measured at
# 1,000,000 posts, the page statement costs the database about a fifth less CPU than with
# json_build_object (which looks each value's type up again on every row), and the text is
# compact (no blank after the colons and commas it writes), so the page is smaller too. Each of
# these gives the JSON of a value, or ``null``: a NULL must never reach the concatenation,
# which would make the whole document NULL.
def _json_string(value: str) -> str:
    return f"coalesce(to_json({value})::text, 'null')"  # escaped as json_build_object escapes


def _json_uuid(value: str) -> str:
    return f"""coalesce('"' || {value} || '"', 'null')"""


def _json_raw(value: str) -> str:
    """A number, a boolean or a json column: its text is its JSON."""
    return f"coalesce(({value})::text, 'null')"


def _json_timestamp(value: str) -> str:
    return f"""coalesce('"' || {sql_timestamp(value)} || '"', 'null')"""


def _json_object(*fields: tuple[str, str]) -> str:
    """A JSON object of (key, JSON text) pairs; the keys are this module's constants."""
    parts = [f"'{'{' if i == 0 else ','}\"{key}\":' || {value}" for i, (key, value) in enumerate(fields)]
    return "(" + " || ".join(parts) + " || '}')"


def _json_model(model: type[BaseModel], fields: dict[str, str]) -> str:
    """The JSON object of ``model``: its fields in its order (pydantic's), each written as
    ``fields`` says. A field without SQL here, or SQL for a field the model lacks, fails at
    import rather than in a response."""
    if set(fields) != set(model.model_fields):
        raise RuntimeError(f"{model.__name__}'s JSON on PostgreSQL does not match its fields")
    return _json_object(*((name, fields[name]) for name in model.model_fields))


_KINDS = ", ".join(f"'{kind}'" for kind in REACTION_KINDS)


def _mine(reader: str) -> str:
    """The reader's reactions to the post, in REACTION_KINDS' order."""
    return f"""(SELECT json_agg(r.kind ORDER BY array_position(ARRAY[{_KINDS}]::varchar[], r.kind))
             FROM reaction r WHERE r.post_id = p.id AND r.persona_id = {reader})"""


def document(reader: str = "$1", now: str = "$3") -> str:
    """The JSON of a row ``p`` of ``post`` with its author's ``a.handle`` and
    ``a.display_name``, for the reader whose placeholder is ``reader``, as of ``now``: the
    pages' (and search's, ``search_sql``) one statement of ``schemas.post_public``."""
    return _json_model(
        PostPublic,
        {
            "id": _json_uuid("p.id"),
            "author": _json_model(
                AuthorPublic,
                {
                    "id": _json_uuid("p.author_id"),
                    "handle": _json_string("a.handle"),
                    "display_name": _json_string("a.display_name"),
                },
            ),
            "context": _json_string("p.context"),
            "audience": _json_string("p.audience"),
            "group_id": _json_uuid("p.group_id"),
            "body": _json_string("p.body"),
            "lang": _json_string("p.lang"),
            "mentions": _json_raw("p.mentions"),
            "tags": _json_raw("p.tags"),
            "links": _json_raw("p.links"),
            # each attachment stored as ``schemas.MediaAttachment`` dumps it (``stored_media``)
            "media": _json_raw("p.media"),
            "pinned": _json_raw(f"coalesce(p.pinned_until > {now}, false) OR p.group_pinned_at IS NOT NULL"),
            "pinned_until": _json_timestamp("p.pinned_until"),
            "reactions": _json_model(
                ReactionsPublic,
                {
                    "counts": _json_object(
                        *((kind, _json_raw(f"p.{kind}_count")) for kind in REACTION_KINDS)
                    ),
                    "mine": f"coalesce({_mine(reader)}::text, '[]')",
                },
            ),
            "comment_count": _json_raw("p.comment_count"),
            "created_at": _json_timestamp("p.created_at"),
            "updated_at": _json_timestamp("p.updated_at"),
            "edited_at": _json_timestamp("p.edited_at"),
            "locked": _json_raw("p.locked_at IS NOT NULL"),
            # a page shows a hidden or held post to its author only (``_shown``)
            "moderation": _json_string("p.moderation"),
        },
    )


DOCUMENT = document()


# The pages (asyncpg: $n parameters) ---------------------------------------------------------------


# The author's name is looked up per row of the page: as a plain join, the generic plan, which
# cannot know the LIMIT, hashed every persona for each page (0.8 ms at 10,000 personas, and
# growing with them). The LIMIT 1 (on a key) keeps the lookup from being flattened into a join.
def _page(rows: str) -> str:
    """The page over ``rows`` (posts with their ``part``): each row's part, id and JSON,
    pinned announcements first (most recently pinned first), then newest first."""
    return f"""SELECT p.part AS {PART}, p.id AS {ID}, {DOCUMENT} AS {DOC}
FROM ({rows}) p LEFT JOIN LATERAL (
    SELECT a.handle, a.display_name FROM persona_replica a WHERE a.id = p.author_id LIMIT 1) a ON true
ORDER BY p.part = '{PINNED}' DESC,
    CASE WHEN p.part = '{PINNED}' THEN coalesce(p.group_pinned_at, p.pinned_until, p.created_at) END DESC,
    p.id DESC"""


# The pinned announcements of the reader's context. $2 context, $3 now
_PINNED = f"""SELECT p.*, '{PINNED}' AS part FROM post p
    WHERE {_shown("$2")} AND {_announcements("$3")}
    ORDER BY p.pinned_until DESC LIMIT {MAX_PINNED}"""

# On demand (below an inbox's floor, or for a reader without one).
# $1 reader, $2 context, $3 now, $4 followees (with the reader), $5 groups, $6 limit, [$7 before]
_ON_DEMAND = f"""SELECT p.*, '{REGULAR}' AS part FROM post p
    WHERE {_shown("$2")}
      AND {_from_sources("$4::uuid[]", "$5::uuid[]")}
      AND {_not_pinned("$3")}{{before}}
    ORDER BY p.id DESC LIMIT $6"""
_ON_DEMAND_FIRST = _ON_DEMAND.format(before="")
FIRST_PAGE = _page(f"({_ON_DEMAND_FIRST}) UNION ALL ({_PINNED})")
LATER_PAGE = _page(_ON_DEMAND.format(before=" AND p.id < $7"))

# From the reader's inbox (decision 0012): its newest entries, with what the inbox does not
# decide filtered here (what is not shown, posts still pinned), and last the inbox's floor (a
# row only when the reader has an inbox).
# $1 reader, $2 context, $3 now, $4 limit, [$5 before]
_INBOX = f"""SELECT p.*, '{REGULAR}' AS part FROM home_entry e JOIN post p ON p.id = e.post_id
    WHERE e.reader_id = $1 AND {_shown("$2")}
      AND {_not_pinned("$3")}{{before}}
    ORDER BY e.post_id DESC LIMIT $4"""
_FLOOR = f"(SELECT '{FLOOR}', i.floor_id, NULL FROM home_inbox i WHERE i.reader_id = $1)"
_INBOX_FIRST = _INBOX.format(before="")
_INBOX_LATER = _INBOX.format(before=" AND e.post_id < $5")
INBOX_FIRST_PAGE = f"({_page(f'({_INBOX_FIRST}) UNION ALL ({_PINNED})')}) UNION ALL {_FLOOR}"
INBOX_LATER_PAGE = f"({_page(_INBOX_LATER)}) UNION ALL {_FLOOR}"


# The inbox's upkeep, and the reader's sources ----------------------------------------------------


def sources(reader: str) -> str:
    """A reader's followees and groups, as two arrays; ``reader`` is the placeholder (``$1`` on
    asyncpg, ``:reader`` through SQLAlchemy)."""
    return f"""SELECT ARRAY(SELECT followee_id FROM follow WHERE follower_id = {reader}) AS followees,
    ARRAY(SELECT group_id FROM membership_replica WHERE persona_id = {reader}) AS groups"""


SOURCES = sources("$1")

# An inbox's first entries: the newest posts of the home rule that an inbox keeps (``_kept``,
# not ``_shown``: a deactivated author may come back, and a pin ends).
# :reader, :now, :context, :authors (followees with the reader), :groups, :size
FILL = f"""INSERT INTO home_entry (reader_id, post_id, built_at)
    SELECT :reader, p.id, :now FROM post p
    WHERE {_kept(":context")}
      AND {_from_sources("CAST(:authors AS uuid[])", "CAST(:groups AS uuid[])")}
    ORDER BY p.id DESC LIMIT :size
    RETURNING post_id"""

# A new post into the inboxes whose readers' sources include it, never below an inbox's floor
# (decision 0012): the converse of ``_from_sources``.
_ABOVE_FLOOR = "(i.floor_id IS NULL OR i.floor_id < :post)"
# :post, :author
FAN_OUT_BY_AUTHOR = f"""INSERT INTO home_entry (reader_id, post_id, built_at)
    SELECT i.reader_id, :post, i.built_at FROM home_inbox i
    WHERE (i.reader_id IN (SELECT f.follower_id FROM follow f WHERE f.followee_id = :author)
           OR i.reader_id = :author)
      AND {_ABOVE_FLOOR}
    ON CONFLICT DO NOTHING"""
# :post, :group
FAN_OUT_BY_GROUP = f"""INSERT INTO home_entry (reader_id, post_id, built_at)
    SELECT i.reader_id, :post, i.built_at FROM home_inbox i
    WHERE i.reader_id IN (SELECT m.persona_id FROM membership_replica m WHERE m.group_id = :group)
      AND {_ABOVE_FLOOR}
    ON CONFLICT DO NOTHING"""
