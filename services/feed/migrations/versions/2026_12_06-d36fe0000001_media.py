"""media: the files attached to posts and comments

Decision 0036. ``media`` (JSON, NOT NULL, ``'[]'`` by default) on post and comment: the
attachments media described when it attached them, as the posts and comments show them. Rows
written before have none. A new column with a constant default, so that pods of the previous
release keep serving while it runs (they neither read nor write it), and PostgreSQL adds it
without rewriting the table.

Plain ``ALTER TABLE`` on SQLite too, never a batch operation: rebuilding post or comment there
would drop the full-text search's triggers (``d23fe0000001``). No index or trigger names the
column, so SQLite drops it in place as well.

Revision ID: d36fe0000001
Revises: d21fe0000001
Create Date: 2026-12-06 04:52:54.072348

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401

import kit.db  # noqa: F401


# revision identifiers, used by Alembic.
revision: str = 'd36fe0000001'
down_revision: Union[str, Sequence[str], None] = 'd21fe0000001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TABLES = ("post", "comment")


def upgrade() -> None:
    """Upgrade schema."""
    for table in TABLES:
        op.add_column(table, sa.Column('media', sa.JSON(), server_default=sa.text("'[]'"), nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN media")
