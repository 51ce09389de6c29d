"""moderation: a persona held by moderation, and audit reasons as long as moderation's

Revision ID: c25a18d0e001
Revises: c24a11d0e001
Create Date: 2026-12-05 17:00:00.000000

Additive, so the previous release keeps serving while it runs (decision 0009): the hold is a
new column that is false for every existing persona, its time a nullable one, and an audit
reason may grow from 1000 to 2000 characters (a widening; PostgreSQL rewrites nothing).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401

import kit.db


# revision identifiers, used by Alembic.
revision: str = 'c25a18d0e001'
down_revision: Union[str, Sequence[str], None] = 'c24a11d0e001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('persona', schema=None) as batch_op:
        batch_op.add_column(sa.Column('moderation_hold', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('moderation_hold_at', kit.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.alter_column(
            'reason',
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=1000),
            type_=sqlmodel.sql.sqltypes.AutoString(length=2000),
            existing_nullable=True,
        )


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("UPDATE audit_entry SET reason = substr(reason, 1, 1000) WHERE length(reason) > 1000")
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.alter_column(
            'reason',
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=2000),
            type_=sqlmodel.sql.sqltypes.AutoString(length=1000),
            existing_nullable=True,
        )
    with op.batch_alter_table('persona', schema=None) as batch_op:
        batch_op.drop_column('moderation_hold_at')
        batch_op.drop_column('moderation_hold')
