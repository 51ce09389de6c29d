"""moderation: a group hidden or removed by moderation, and when that was decided

Revision ID: c25918d0e001
Revises: c24960d0e001
Create Date: 2026-12-05 16:13:24.754278

Two nullable columns, added without a default: additive, so the previous release keeps
serving while it runs (decision 0009).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401

import kit.db  # noqa: F401


# revision identifiers, used by Alembic.
revision: str = 'c25918d0e001'
down_revision: Union[str, Sequence[str], None] = 'c24960d0e001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('group', schema=None) as batch_op:
        batch_op.add_column(sa.Column('moderation', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
        batch_op.add_column(sa.Column('moderated_at', kit.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('group', schema=None) as batch_op:
        batch_op.drop_column('moderated_at')
        batch_op.drop_column('moderation')
