"""search: the language of posts and comments, their full-text index, and groups' handles

Decision 0034. ``lang`` (nullable) on post and comment, detected (``kit.search.detect``) for
the texts written before; ``handle`` (nullable) on the group replica, for the ``group:``
filter, filled by the groups' next events. The index differs by database:

- PostgreSQL: ``kit.search.PG_SETUP`` first (the unaccent extension, the text search
  configurations, ``search_document``), then a stored generated ``search`` tsvector on post and
  comment, with a GIN index. Adding a stored generated column rewrites the table: on a large
  feed, run it in a quiet hour.
- SQLite: FTS5 tables ``post_search`` and ``comment_search`` (``stems``, ``words``) keyed by the
  row's rowid, filled here from the rows there are and kept from then on by triggers, in the
  writing transaction, with the ``search_stems`` and ``search_words`` functions that
  ``kit.search.register_sqlite`` defines on every connection. ``search`` is a virtual NULL
  column there, with an index that holds no row, so that the tables match the models on both
  databases (``services.feed.models``). A later migration that rebuilds post or comment on
  SQLite (a batch operation) drops these triggers and renumbers rowids: it must create the
  triggers again and refill the FTS5 table (``_sqlite_index`` below).

Every column is new and nullable or generated, so that pods of the previous release keep
serving while it runs: they neither read nor write these columns.

Revision ID: d23fe0000001
Revises: c25f18d0e001
Create Date: 2026-12-06 09:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401

from kit import search

# revision identifiers, used by Alembic.
revision: str = 'd23fe0000001'
down_revision: Union[str, Sequence[str], None] = 'c25f18d0e001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TABLES = ("post", "comment")
BATCH = 1000
FTS5 = 'fts5(stems, words, tokenize = "unicode61 remove_diacritics 2")'


def _sqlite_index(table: str) -> None:
    """The FTS5 table of ``table``, filled from its rows, and the triggers that keep it: every
    row is indexed, deleted ones too (a post moderation removed keeps its text, and comes back
    with a restore that does not touch its text)."""
    fts = f"{table}_search"
    row = "search_stems(new.lang, new.body), search_words(new.body)"
    op.execute(f"CREATE VIRTUAL TABLE {fts} USING {FTS5}")
    op.execute(
        f"INSERT INTO {fts} (rowid, stems, words) "
        f"SELECT rowid, search_stems(lang, body), search_words(body) FROM {table}"
    )
    op.execute(
        f"""CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN
            INSERT INTO {fts} (rowid, stems, words) VALUES (new.rowid, {row});
        END"""
    )
    op.execute(
        f"""CREATE TRIGGER {fts}_update AFTER UPDATE OF body, lang ON {table} BEGIN
            DELETE FROM {fts} WHERE rowid = old.rowid;
            INSERT INTO {fts} (rowid, stems, words) VALUES (new.rowid, {row});
        END"""
    )
    op.execute(
        f"""CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN
            DELETE FROM {fts} WHERE rowid = old.rowid;
        END"""
    )


def _detect_languages(table: str) -> None:
    """The language of every text written before, where ``kit.search.detect`` can tell it, in
    batches along the primary key (before the search document exists, which each update would
    compute again)."""
    rows = sa.table(table, sa.column("id", sa.Uuid()), sa.column("body", sa.Text()), sa.column("lang", sa.String()))
    bind = op.get_bind()
    last = None
    while True:
        query = sa.select(rows.c.id, rows.c.body).order_by(rows.c.id).limit(BATCH)
        if last is not None:
            query = query.where(rows.c.id > last)
        batch = bind.execute(query).all()
        if not batch:
            return
        found = [{"key": row.id, "lang": search.detect(row.body)} for row in batch]
        found = [row for row in found if row["lang"] is not None]
        if found:
            bind.execute(
                rows.update().where(rows.c.id == sa.bindparam("key")).values(lang=sa.bindparam("lang")), found
            )
        last = batch[-1].id


def upgrade() -> None:
    """Upgrade schema."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        for statement in search.PG_SETUP:
            op.execute(statement)
    for table in TABLES:
        op.add_column(table, sa.Column('lang', sqlmodel.sql.sqltypes.AutoString(length=35), nullable=True))
        _detect_languages(table)
        if sqlite:
            op.execute(f"ALTER TABLE {table} ADD COLUMN search TEXT GENERATED ALWAYS AS (NULL) VIRTUAL")
            op.execute(f"CREATE INDEX ix_{table}_search ON {table} (search) WHERE search IS NOT NULL")
            _sqlite_index(table)
        else:
            op.execute(
                f"ALTER TABLE {table} ADD COLUMN search tsvector "
                "GENERATED ALWAYS AS (search_document(lang, body)) STORED"
            )
            op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING gin (search)")
    op.add_column('group_replica', sa.Column('handle', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True))
    op.create_index('ix_group_replica_context_handle', 'group_replica', ['context', 'handle'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index('ix_group_replica_context_handle', table_name='group_replica')
    with op.batch_alter_table('group_replica', schema=None) as batch_op:
        batch_op.drop_column('handle')
    for table in TABLES:
        if sqlite:
            for trigger in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_search_{trigger}")
            op.execute(f"DROP TABLE IF EXISTS {table}_search")
        op.drop_index(f"ix_{table}_search", table_name=table)
        # SQLite drops a column only when no index or trigger names it (those are gone now).
        op.execute(f"ALTER TABLE {table} DROP COLUMN search")
        op.execute(f"ALTER TABLE {table} DROP COLUMN lang")
    if not sqlite:
        for statement in search.pg_teardown():
            op.execute(statement)
