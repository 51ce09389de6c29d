"""search: a group's language, and the full-text index of its name, purpose, tags and charter

Revision ID: d23ce0000001
Revises: c25918d0e001
Create Date: 2026-12-12 10:00:00.000000

``group.lang`` (nullable; existing groups get the language detected in their purpose and
charter), then the index services/groups/search.py reads (decision 0034):

- PostgreSQL: kit.search's configurations and functions, the generated column
  ``search_vector`` (name and handle A, purpose B, tags C, charter and description D) with its
  GIN index, and a trigram index on the folded name for queries with a typo. The column is
  computed by PostgreSQL in every change's own statement.
- SQLite: the FTS5 table ``group_search``, one row per group (``group_id``, then stems and
  words of each field), written by triggers on ``group`` in every change's own transaction.
  The triggers call ``search_stems`` and ``search_words``, which kit.db defines on every
  connection. A later batch migration that rebuilds ``group`` drops the triggers with the old
  table: it must create them again (``TRIGGERS`` here).

Additive: old code keeps working against it (on PostgreSQL; on SQLite its connections lack the
functions the triggers call, and SQLite runs one process anyway).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401

from kit import search


# revision identifiers, used by Alembic.
revision: str = 'd23ce0000001'
down_revision: Union[str, Sequence[str], None] = 'c25918d0e001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

FIELDS = ("name", "purpose", "tags", "charter")


def _texts(row: str) -> dict[str, str]:
    """Each field's text in SQLite, over ``row`` (``new`` or the table's alias): the JSON lists'
    strings themselves, not their JSON text (which escapes every accented letter)."""

    def strings(column: str) -> str:
        return f"coalesce((SELECT group_concat(value, ' ') FROM json_each({row}.{column})), '')"

    return {
        "name": f"{row}.name || ' ' || {row}.handle",
        "purpose": f"{row}.purpose",
        "tags": strings("tags"),
        "charter": (
            f"coalesce({row}.objective, '') || ' ' || coalesce({row}.audience, '') || ' ' || "
            f"{strings('success_indicators')} || ' ' || coalesce({row}.description, '')"
        ),
    }


# PostgreSQL ------------------------------------------------------------------------------

PG_FOLD = """CREATE OR REPLACE FUNCTION group_search_fold(body text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path FROM CURRENT AS $$
    SELECT lower(unaccent('unaccent'::regdictionary, coalesce(body, ''))) $$"""

# The JSON lists through jsonb, whose text has the strings' letters where json's keeps the
# escapes the application wrote (``\u00e9`` for "é").
# The fields joined with search_join, so that no phrase runs from one field into the next.
PG_VECTOR = """ALTER TABLE "group" ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    search_join(search_join(search_join(
        setweight(search_document(lang, name || ' ' || handle), 'A'),
        setweight(search_document(lang, purpose), 'B')),
        setweight(search_document(lang, tags::jsonb::text), 'C')),
        setweight(search_document(lang, coalesce(objective, '') || ' ' || coalesce(audience, '')
            || ' ' || success_indicators::jsonb::text || ' ' || coalesce(description, '')), 'D'))
) STORED"""


# SQLite ----------------------------------------------------------------------------------

COLUMNS = [f"{name}_{part}" for name in FIELDS for part in ("stems", "words")]
FTS = (
    "CREATE VIRTUAL TABLE group_search USING fts5(group_id UNINDEXED, "
    + ", ".join(COLUMNS)
    + ', tokenize = "unicode61 remove_diacritics 2")'
)


def _row_values(row: str) -> str:
    texts = _texts(row)
    values = []
    for name in FIELDS:
        values += [f"search_stems({row}.lang, {texts[name]})", f"search_words({texts[name]})"]
    return ", ".join(values)


INSERT_ROW = f"INSERT INTO group_search (group_id, {', '.join(COLUMNS)}) VALUES (new.id, {_row_values('new')});"
INDEXED = "name, handle, purpose, tags, objective, audience, success_indicators, description, lang"
TRIGGERS = (
    f'CREATE TRIGGER group_search_insert AFTER INSERT ON "group" BEGIN {INSERT_ROW} END',
    f'CREATE TRIGGER group_search_update AFTER UPDATE OF {INDEXED} ON "group" BEGIN '
    f"DELETE FROM group_search WHERE group_id = old.id; {INSERT_ROW} END",
    'CREATE TRIGGER group_search_delete AFTER DELETE ON "group" BEGIN '
    "DELETE FROM group_search WHERE group_id = old.id; END",
)
BACKFILL = (
    f"INSERT INTO group_search (group_id, {', '.join(COLUMNS)}) "
    f'SELECT g.id, {_row_values("g")} FROM "group" AS g'
)


def _detect_languages() -> None:
    """Existing groups: the language their purpose and charter are written in, if sure."""
    group = sa.table(
        "group",
        sa.column("id"),
        sa.column("purpose"),
        sa.column("objective"),
        sa.column("audience"),
        sa.column("success_indicators", sa.JSON),
        sa.column("lang"),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(group.c.id, group.c.purpose, group.c.objective, group.c.audience, group.c.success_indicators)
    ).all()
    for row in rows:
        text = "\n".join([row.purpose, row.objective or "", row.audience or "", *(row.success_indicators or [])])
        lang = search.detect(text)
        if lang is not None:
            bind.execute(sa.update(group).where(group.c.id == row.id).values(lang=lang))


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('group', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lang', sqlmodel.sql.sqltypes.AutoString(length=35), nullable=True))
    _detect_languages()
    if op.get_bind().dialect.name == "postgresql":
        for statement in search.PG_SETUP:
            op.execute(statement)
        op.execute(search.PG_TRIGRAM)
        op.execute(PG_FOLD)
        op.execute(PG_VECTOR)
        op.execute('CREATE INDEX ix_group_search_vector ON "group" USING gin (search_vector)')
        op.execute('CREATE INDEX ix_group_name_trigram ON "group" USING gin (group_search_fold(name) gin_trgm_ops)')
    else:
        op.execute(FTS)
        for statement in TRIGGERS:
            op.execute(statement)
        op.execute(BACKFILL)


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_group_name_trigram")
        op.execute("DROP INDEX IF EXISTS ix_group_search_vector")
        op.execute('ALTER TABLE "group" DROP COLUMN IF EXISTS search_vector')
        op.execute("DROP FUNCTION IF EXISTS group_search_fold(text)")
        for statement in search.pg_teardown():
            op.execute(statement)
    else:
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS group_search_{name}")
        op.execute("DROP TABLE IF EXISTS group_search")
    with op.batch_alter_table('group', schema=None) as batch_op:
        batch_op.drop_column('lang')
