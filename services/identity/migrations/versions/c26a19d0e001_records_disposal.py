"""records disposal: the disposals records asks for, and the audit log indexed by age

Revision ID: c26a19d0e001
Revises: c25a18d0e001
Create Date: 2026-12-05 19:00:00.000000

Additive, so the previous release keeps serving while it runs (decision 0009): a new table the
previous release never reads, and an index on the audit log's creation time, by which records'
disposal deletes its old entries in batches (decision 0033).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401

import kit.db


# revision identifiers, used by Alembic.
revision: str = 'c26a19d0e001'
down_revision: Union[str, Sequence[str], None] = 'c25a18d0e001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('disposal',
    sa.Column('record_class', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('before', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('requested_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('record_class', name=op.f('pk_disposal'))
    )
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entry_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entry_created_at'))

    op.drop_table('disposal')
