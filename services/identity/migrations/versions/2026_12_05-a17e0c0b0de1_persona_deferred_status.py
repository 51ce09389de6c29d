"""persona deferred status; updated_at only for the owner's edits

Revision ID: a17e0c0b0de1
Revises: df4104d0c8a9
Create Date: 2026-12-05 10:20:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401

import kit.db


# revision identifiers, used by Alembic.
revision: str = 'a17e0c0b0de1'
down_revision: Union[str, Sequence[str], None] = 'df4104d0c8a9'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('persona', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column('pending_status_at', kit.db.UTCDateTime(), nullable=True))
        batch_op.alter_column('updated_at', existing_type=kit.db.UTCDateTime(), nullable=True)
        batch_op.create_index(batch_op.f('ix_persona_pending_status_at'), ['pending_status_at'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("UPDATE persona SET updated_at = created_at WHERE updated_at IS NULL")
    with op.batch_alter_table('persona', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_persona_pending_status_at'))
        batch_op.alter_column('updated_at', existing_type=kit.db.UTCDateTime(), nullable=False)
        batch_op.drop_column('pending_status_at')
        batch_op.drop_column('pending_status')
