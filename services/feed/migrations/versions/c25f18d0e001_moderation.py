"""moderation: what moderation did to posts, comments, personas and groups, and the held terms

Decision 0032. Every column is new and nullable or defaulted, so that pods of the previous
release keep serving while it runs: they neither read nor write these columns.

Revision ID: c25f18d0e001
Revises: c24f33d0e001
Create Date: 2026-12-05 14:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401

import kit.db  # noqa: F401


# revision identifiers, used by Alembic.
revision: str = 'c25f18d0e001'
down_revision: Union[str, Sequence[str], None] = 'c24f33d0e001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('held_term_set',
    sa.Column('context', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('context', name=op.f('pk_held_term_set'))
    )
    op.create_table('held_term',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('context', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('term', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('match', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_held_term'))
    )
    with op.batch_alter_table('held_term', schema=None) as batch_op:
        batch_op.create_index('ix_held_term_context', ['context'], unique=False)

    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.add_column(sa.Column('moderation', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
        batch_op.add_column(sa.Column('moderated_at', kit.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('locked_at', kit.db.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('moderation', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
        batch_op.add_column(sa.Column('moderated_at', kit.db.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('persona_replica', schema=None) as batch_op:
        batch_op.add_column(sa.Column('limited', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('limited_at', kit.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(
            'ix_persona_replica_limited',
            ['id'],
            unique=False,
            sqlite_where=sa.text('limited'),
            postgresql_where=sa.text('limited'),
        )

    with op.batch_alter_table('group_replica', schema=None) as batch_op:
        batch_op.add_column(sa.Column('moderation', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
        batch_op.create_index(
            'ix_group_replica_moderated',
            ['id'],
            unique=False,
            sqlite_where=sa.text('moderation IS NOT NULL'),
            postgresql_where=sa.text('moderation IS NOT NULL'),
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('group_replica', schema=None) as batch_op:
        batch_op.drop_index('ix_group_replica_moderated')
        batch_op.drop_column('moderation')

    with op.batch_alter_table('persona_replica', schema=None) as batch_op:
        batch_op.drop_index('ix_persona_replica_limited')
        batch_op.drop_column('limited_at')
        batch_op.drop_column('limited')

    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.drop_column('moderated_at')
        batch_op.drop_column('moderation')

    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.drop_column('locked_at')
        batch_op.drop_column('moderated_at')
        batch_op.drop_column('moderation')

    with op.batch_alter_table('held_term', schema=None) as batch_op:
        batch_op.drop_index('ix_held_term_context')

    op.drop_table('held_term')
    op.drop_table('held_term_set')
