"""stream tickets: one-time values that open the event stream from a browser

Decision 0035. ``stream_ticket`` holds each ticket as the SHA-256 digest of its value, with
what the token it was asked with stood for (persona, context, app, scope, roles, the
token's expiry), when it stops being usable and when it was used; housekeeping deletes rows soon after
they expire. A new table only, so the previous release keeps serving while it runs (decision
0009).

Revision ID: d21fe0000001
Revises: d23fe0000001
Create Date: 2026-12-06 01:39:16.477045

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401

import kit.db  # noqa: F401


# revision identifiers, used by Alembic.
revision: str = 'd21fe0000001'
down_revision: Union[str, Sequence[str], None] = 'd23fe0000001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('stream_ticket',
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('persona_id', sa.Uuid(), nullable=False),
    sa.Column('context', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('app_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('token_expires_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', kit.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_stream_ticket'))
    )
    with op.batch_alter_table('stream_ticket', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stream_ticket_expires_at'), ['expires_at'], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('stream_ticket', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stream_ticket_expires_at'))

    op.drop_table('stream_ticket')
