"""apps and the authorization code flow

Revision ID: d21de0000001
Revises: d23de0000001
Create Date: 2026-12-06 01:31:31.800805

Additive, so the previous release keeps serving while it runs (decision 0009): the apps that
sign people in with the authorization-code flow, their codes, browsers' sign-in sessions, and
three columns on refresh tokens that bind an app's family to its app, persona and scopes
(decision 0035). Existing refresh tokens get an empty scope and no app: password-grant families.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401

import kit.db


# revision identifiers, used by Alembic.
revision: str = 'd21de0000001'
down_revision: Union[str, Sequence[str], None] = 'd23de0000001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('app',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('redirect_uris', sa.JSON(), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('secret_hash', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('created_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', kit.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app'))
    )
    op.create_table('signin_session',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('user_agent', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('created_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', kit.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_signin_session_account_id_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signin_session')),
    sa.UniqueConstraint('digest', name=op.f('uq_signin_session_digest'))
    )
    with op.batch_alter_table('signin_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signin_session_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_signin_session_expires_at'), ['expires_at'], unique=False)

    op.create_table('authorization_code',
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('app_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('persona_id', sa.Uuid(), nullable=False),
    sa.Column('redirect_uri', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('code_challenge', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('family_id', sa.Uuid(), nullable=False),
    sa.Column('used_at', kit.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', kit.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_authorization_code_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['app_id'], ['app.id'], name=op.f('fk_authorization_code_app_id_app'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['persona_id'], ['persona.id'], name=op.f('fk_authorization_code_persona_id_persona'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_authorization_code'))
    )
    with op.batch_alter_table('authorization_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_code_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorization_code_app_id'), ['app_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorization_code_expires_at'), ['expires_at'], unique=False)

    with op.batch_alter_table('refreshtoken', schema=None) as batch_op:
        batch_op.add_column(sa.Column('app_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column('persona_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False, server_default=''))
        batch_op.create_index(batch_op.f('ix_refreshtoken_app_id'), ['app_id'], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('refreshtoken', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refreshtoken_app_id'))
        batch_op.drop_column('scope')
        batch_op.drop_column('persona_id')
        batch_op.drop_column('app_id')

    with op.batch_alter_table('authorization_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_code_expires_at'))
        batch_op.drop_index(batch_op.f('ix_authorization_code_app_id'))
        batch_op.drop_index(batch_op.f('ix_authorization_code_account_id'))

    op.drop_table('authorization_code')
    with op.batch_alter_table('signin_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signin_session_expires_at'))
        batch_op.drop_index(batch_op.f('ix_signin_session_account_id'))

    op.drop_table('signin_session')
    op.drop_table('app')
