"""people search: a trigram and a full-text index of personas

Revision ID: d23de0000001
Revises: c26a19d0e001
Create Date: 2026-12-06 09:00:00.000000

Additive (decision 0009): the previous release never reads what this adds, and what it adds
to ``persona`` the database computes, so the previous release's writes fill it too. What
people search reads (services/identity/search.py):

- **PostgreSQL**: the extensions and text search configurations of ``kit.search``
  (``PG_SETUP``, ``PG_TRIGRAM``); ``persona_search_text(...)``, a persona's searchable fields
  (handle, display name, job title, department, skills) folded (lower case, unaccented), and
  ``persona_search_document(text)``, their ``tsvector`` stemmed in English and French and
  literal; two stored generated columns of ``persona`` that hold them (``search_text``,
  ``search_document``), outside the SQLModel mapping so that no read of a persona loads
  them, each with a GIN index (trigrams with ``gin_trgm_ops``, and the document). Stored
  rather than expression indexes: a search then reads the text, for the index's recheck and
  for the score, instead of computing it again for every candidate (about 90 µs a row, which
  made a common word cost 370 ms among 4,000 personas). Adding them rewrites the table once,
  under a lock: about a second for 100,000 personas. The functions run with the search path
  of this migration, so that ANALYZE, REINDEX and autovacuum, which run with a narrower one,
  still find ``unaccent`` and the configurations.
- **SQLite**: ``persona_search`` (one row a persona: ``stems`` and ``words``, kept by
  triggers on ``persona`` that call ``search_stems`` and ``search_words``, which
  ``kit.search.register_sqlite`` defines on every connection), and two FTS5 indexes over it
  as external content: ``persona_search_fts`` (unicode61, the stemmed and literal words) and
  ``persona_search_grams`` (the trigram tokenizer, SQLite 3.34 or later, for candidates of
  misspelled words) over ``grams``: the words padded as pg_trgm pads them (two spaces before
  a word, one after), so that its trigrams include pg_trgm's "  s" and " sm" of "smith". A persona's id is not an integer, and SQLite's VACUUM may renumber the
  rowids of such a table, so the FTS rows hang off ``persona_search.id`` instead.

A later migration that rebuilds ``persona`` on SQLite (``batch_alter_table`` copies the table)
drops its triggers with the old table: it must create ``persona_search_insert``,
``persona_search_update`` and ``persona_search_delete`` again (tests/identity/test_search.py
checks they exist at the head revision).
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from kit import search

# revision identifiers, used by Alembic.
revision: str = "d23de0000001"
down_revision: Union[str, Sequence[str], None] = "c26a19d0e001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

FIELDS = "handle, display_name, job_title, department, skills"

PG_FUNCTIONS = (
    """CREATE OR REPLACE FUNCTION persona_search_text(
            handle text, display_name text, job_title text, department text, skills json)
        RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path FROM CURRENT AS $$
        SELECT lower(unaccent('unaccent'::regdictionary, concat_ws(' ',
            handle, display_name, job_title, department,
            (SELECT string_agg(value, ' ') FROM json_array_elements_text(
                CASE WHEN json_typeof(skills) = 'array' THEN skills ELSE '[]'::json END)))))
        $$""",
    """CREATE OR REPLACE FUNCTION persona_search_document(body text)
        RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path FROM CURRENT AS $$
        SELECT to_tsvector('search_en'::regconfig, body)
            || to_tsvector('search_fr'::regconfig, body)
            || to_tsvector('search_simple'::regconfig, body)
        $$""",
)
PG_COLUMNS = (
    f"""ALTER TABLE persona
        ADD COLUMN search_text text
            GENERATED ALWAYS AS (persona_search_text({FIELDS})) STORED,
        ADD COLUMN search_document tsvector
            GENERATED ALWAYS AS (persona_search_document(persona_search_text({FIELDS}))) STORED""",
    # fastupdate off: personas change seldom, and a search should not read a pending list
    "CREATE INDEX ix_persona_search_trgm ON persona USING gin (search_text gin_trgm_ops) "
    "WITH (fastupdate = off)",
    "CREATE INDEX ix_persona_search_document ON persona USING gin (search_document) WITH (fastupdate = off)",
)

# The searchable text of the persona row ``row`` (``new`` or ``old``), skills one by one.
_TEXT = (
    "{row}.handle || ' ' || {row}.display_name || ' ' || coalesce({row}.job_title, '') || ' ' "
    "|| coalesce({row}.department, '') || ' ' "
    "|| coalesce((SELECT group_concat(value, ' ') FROM json_each({row}.skills)), '')"
)
# A persona has no language of its own: its words are stemmed in English and in French.
_STEMS = "search_stems('en', {text}) || ' ' || search_stems('fr', {text})"
_WORDS = "search_words({text})"


def _stems(row: str) -> str:
    return _STEMS.format(text=_TEXT.format(row=row))


def _words(row: str) -> str:
    return _WORDS.format(text=_TEXT.format(row=row))


SQLITE_TABLES = (
    """CREATE TABLE persona_search (
        id INTEGER PRIMARY KEY,
        persona_id CHAR(32) NOT NULL UNIQUE,
        stems TEXT NOT NULL,
        words TEXT NOT NULL,
        grams TEXT GENERATED ALWAYS AS ('  ' || replace(words, ' ', '   ') || ' ') STORED
    )""",
    """CREATE VIRTUAL TABLE persona_search_fts USING fts5(
        stems, words, content = 'persona_search', content_rowid = 'id',
        tokenize = "unicode61 remove_diacritics 2")""",
    """CREATE VIRTUAL TABLE persona_search_grams USING fts5(
        grams, content = 'persona_search', content_rowid = 'id', tokenize = 'trigram')""",
    # the two indexes follow their content table
    """CREATE TRIGGER persona_search_ai AFTER INSERT ON persona_search BEGIN
        INSERT INTO persona_search_fts (rowid, stems, words) VALUES (new.id, new.stems, new.words);
        INSERT INTO persona_search_grams (rowid, grams) VALUES (new.id, new.grams);
    END""",
    """CREATE TRIGGER persona_search_ad AFTER DELETE ON persona_search BEGIN
        INSERT INTO persona_search_fts (persona_search_fts, rowid, stems, words)
            VALUES ('delete', old.id, old.stems, old.words);
        INSERT INTO persona_search_grams (persona_search_grams, rowid, grams)
            VALUES ('delete', old.id, old.grams);
    END""",
    """CREATE TRIGGER persona_search_au AFTER UPDATE ON persona_search BEGIN
        INSERT INTO persona_search_fts (persona_search_fts, rowid, stems, words)
            VALUES ('delete', old.id, old.stems, old.words);
        INSERT INTO persona_search_grams (persona_search_grams, rowid, grams)
            VALUES ('delete', old.id, old.grams);
        INSERT INTO persona_search_fts (rowid, stems, words) VALUES (new.id, new.stems, new.words);
        INSERT INTO persona_search_grams (rowid, grams) VALUES (new.id, new.grams);
    END""",
)
SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER persona_search_insert AFTER INSERT ON persona BEGIN
        INSERT INTO persona_search (persona_id, stems, words)
            VALUES (new.id, {_stems("new")}, {_words("new")});
    END""",
    f"""CREATE TRIGGER persona_search_update AFTER UPDATE OF {FIELDS} ON persona BEGIN
        UPDATE persona_search SET stems = {_stems("new")}, words = {_words("new")}
            WHERE persona_id = new.id;
    END""",
    """CREATE TRIGGER persona_search_delete AFTER DELETE ON persona BEGIN
        DELETE FROM persona_search WHERE persona_id = old.id;
    END""",
)


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        for statement in (*search.PG_SETUP, search.PG_TRIGRAM, *PG_FUNCTIONS, *PG_COLUMNS):
            op.execute(statement)
        return
    for statement in SQLITE_TABLES:
        op.execute(statement)
    # the personas that exist already (kit.migrations registers the functions on this engine)
    op.execute(
        sa.text(
            f"INSERT INTO persona_search (persona_id, stems, words) "
            f"SELECT id, {_stems('persona')}, {_words('persona')} FROM persona"
        )
    )
    for statement in SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE persona DROP COLUMN IF EXISTS search_document, DROP COLUMN IF EXISTS search_text"
        )
        op.execute("DROP FUNCTION IF EXISTS persona_search_document(text)")
        op.execute("DROP FUNCTION IF EXISTS persona_search_text(text, text, text, text, json)")
        for statement in search.pg_teardown():
            op.execute(statement)
        return
    for name in ("persona_search_insert", "persona_search_update", "persona_search_delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS persona_search_fts")
    op.execute("DROP TABLE IF EXISTS persona_search_grams")
    op.execute("DROP TABLE IF EXISTS persona_search")
