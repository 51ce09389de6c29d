"""id ranges: a BRIN index of post and comment ids

Decision 0048. Search reads the GIN index's matches within a range of ids; a BRIN index of
``id`` says which blocks hold that range for a few index entries, where the primary key's
bitmap of the same range cost a millisecond per 20,000 rows (``services.feed.models``,
``id_range_index``). ``autosummarize`` has autovacuum summarise each block range once it is
full; until then a range counts as holding every id, so a search stays right, only reads more.

On SQLite, which has no BRIN indexes, an index that holds no row (no id is NULL), so that the
tables match the models on both databases. Plain ``CREATE INDEX``, never a batch operation:
rebuilding post or comment on SQLite would drop the full-text search's triggers
(``d23fe0000001``).

A BRIN index is built in one pass over the table, and writes to it cost next to nothing; on
a large feed it takes a few seconds per million rows, holding a lock that blocks writes to the
table while it runs (not reads).

Revision ID: d48fe0000001
Revises: d36fe0000001
Create Date: 2026-12-07 10:00:00.000000

"""
from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = 'd48fe0000001'
down_revision: Union[str, Sequence[str], None] = 'd36fe0000001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TABLES = ("post", "comment")


def upgrade() -> None:
    """Upgrade schema."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in TABLES:
        if sqlite:
            op.execute(f"CREATE INDEX ix_{table}_id_range ON {table} (id) WHERE id IS NULL")
        else:
            op.execute(f"CREATE INDEX ix_{table}_id_range ON {table} USING brin (id) WITH (autosummarize = on)")


def downgrade() -> None:
    """Downgrade schema."""
    for table in TABLES:
        op.drop_index(f"ix_{table}_id_range", table_name=table)
