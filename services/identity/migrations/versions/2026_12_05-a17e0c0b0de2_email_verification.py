"""email verification: pending registrations, and when an account's address was proved

Revision ID: a17e0c0b0de2
Revises: a17e0c0b0de1
Create Date: 2026-12-05 11:00:00.000000

"""
from datetime import datetime, timezone
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401

import kit.db


# revision identifiers, used by Alembic.
revision: str = 'a17e0c0b0de2'
down_revision: Union[str, Sequence[str], None] = 'a17e0c0b0de1'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema. Accounts that exist already keep a null email_verified_at: their
    addresses were never proved, so provisioning does not adopt their passwords; those HR
    adopted already lose theirs (and their refresh tokens) now."""
    op.create_table('registration',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('token_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('handle', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('display_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registration')),
    sa.UniqueConstraint('token_digest', name=op.f('uq_registration_token_digest'))
    )
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registration_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_registration_expires_at'), ['expires_at'], unique=False)

    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_verified_at', kit.db.UTCDateTime(timezone=True), nullable=True))

    now = datetime.now(timezone.utc)
    account = sa.table(
        'account',
        sa.column('id', sa.Uuid()),
        sa.column('provisioned', sa.Boolean()),
        sa.column('password_hash', sa.String()),
        sa.column('password_changed_at', kit.db.UTCDateTime(timezone=True)),
    )
    refresh_token = sa.table(
        'refreshtoken',
        sa.column('account_id', sa.Uuid()),
        sa.column('revoked_at', kit.db.UTCDateTime(timezone=True)),
    )
    adopted = sa.and_(account.c.provisioned.is_(True), ~account.c.password_hash.startswith('!'))
    op.execute(
        refresh_token.update()
        .where(
            refresh_token.c.revoked_at.is_(None),
            refresh_token.c.account_id.in_(sa.select(account.c.id).where(adopted)),
        )
        .values(revoked_at=now)
    )
    op.execute(account.update().where(adopted).values(password_hash='!unproved', password_changed_at=now))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_column('email_verified_at')

    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registration_expires_at'))
        batch_op.drop_index(batch_op.f('ix_registration_email'))

    op.drop_table('registration')
