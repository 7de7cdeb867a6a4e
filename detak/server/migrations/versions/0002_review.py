"""review: the doctors' signed verdicts (immutable: a trigger refuses UPDATE and DELETE; a
correction is a new version) and the review queue's locks.

Revision ID: 0002_review
Revises: 0001
Create Date: 2026-12-07 13:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002_review'
down_revision = '0001'
branch_labels = None
depends_on = None

NOW = sa.text("now()")
GUARD = """
CREATE FUNCTION detak_verdict_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a signed verdict is immutable (% refused): sign a new version', TG_OP;
END $$;
"""


def upgrade() -> None:
    op.create_table('review_verdicts',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('screening_id', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('doctor_id', sa.Integer(), nullable=False),
    sa.Column('doctor_name', sa.String(length=200), nullable=False),
    sa.Column('labels', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('model_labels', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    sa.CheckConstraint("action IN ('none', 'routine', 'cardiology', 'urgent')",
                       name='review_verdicts_action'),
    sa.ForeignKeyConstraint(['doctor_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['screening_id'], ['screenings.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('screening_id', 'version')
    )
    op.create_index(op.f('ix_review_verdicts_screening_id'), 'review_verdicts', ['screening_id'],
                    unique=False)
    op.create_table('review_locks',
    sa.Column('screening_id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('user_name', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['screening_id'], ['screenings.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('screening_id')
    )
    op.execute(GUARD)
    op.execute("CREATE TRIGGER review_verdicts_immutable BEFORE UPDATE OR DELETE ON "
               "review_verdicts FOR EACH ROW EXECUTE FUNCTION detak_verdict_immutable()")
    op.execute("CREATE TRIGGER review_verdicts_no_truncate BEFORE TRUNCATE ON review_verdicts "
               "FOR EACH STATEMENT EXECUTE FUNCTION detak_verdict_immutable()")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS review_verdicts_immutable ON review_verdicts")
    op.execute("DROP TRIGGER IF EXISTS review_verdicts_no_truncate ON review_verdicts")
    op.execute("DROP FUNCTION IF EXISTS detak_verdict_immutable()")
    op.drop_table('review_locks')
    op.drop_index(op.f('ix_review_verdicts_screening_id'), table_name='review_verdicts')
    op.drop_table('review_verdicts')
