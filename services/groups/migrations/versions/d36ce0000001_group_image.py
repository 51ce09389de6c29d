"""group image

Revision ID: d36ce0000001
Revises: d23ce0000001
Create Date: 2026-12-06 04:58:00.000000

Additive, so the previous release keeps serving while it runs (decision 0009): a group's image,
the file media keeps (decision 0036), as media described it when it was attached. Null for
every existing group: none has one yet.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401

import kit.db  # noqa: F401


# revision identifiers, used by Alembic.
revision: str = 'd36ce0000001'
down_revision: Union[str, Sequence[str], None] = 'd23ce0000001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('group', schema=None) as batch_op:
        batch_op.add_column(sa.Column('image', sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('group', schema=None) as batch_op:
        batch_op.drop_column('image')
