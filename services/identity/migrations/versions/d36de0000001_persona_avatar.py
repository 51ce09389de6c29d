"""persona avatar

Revision ID: d36de0000001
Revises: d21de0000001
Create Date: 2026-12-06 04:53:30.590633

Additive, so the previous release keeps serving while it runs (decision 0009): a persona's
avatar, the file media keeps (decision 0036), as media described it when it was attached.
Null for every existing persona: none has one yet.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401

import kit.db  # noqa: F401


# revision identifiers, used by Alembic.
revision: str = 'd36de0000001'
down_revision: Union[str, Sequence[str], None] = 'd21de0000001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('persona', schema=None) as batch_op:
        batch_op.add_column(sa.Column('avatar', sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('persona', schema=None) as batch_op:
        batch_op.drop_column('avatar')
