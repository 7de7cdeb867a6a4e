"""integration tokens: the bearer tokens of the ``integration`` role that reads ``/fhir/...``
for one facility (only their SHA-256 is stored).

Revision ID: 0004_fhir
Revises: 0003_expert
Create Date: 2026-12-07 12:45:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_fhir'
down_revision = '0003_expert'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'integration_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('facility_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['facility_id'], ['facilities.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )


def downgrade() -> None:
    op.drop_table('integration_tokens')
