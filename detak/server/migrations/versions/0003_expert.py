"""expert system (S4): case bases, features, classes, cases (a case from a signed verdict links
back to its screening).

Revision ID: 0003_expert
Revises: 0002_review
Create Date: 2026-12-07 13:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0003_expert'
down_revision = '0002_review'
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        'expert_bases',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('description', sa.Text(), server_default='', nullable=False),
        sa.Column('target', sa.String(length=100), server_default='diagnosis', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    op.create_table(
        'expert_features',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('base_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=100), nullable=False),
        sa.Column('column', sa.String(length=100), nullable=False),
        sa.Column('unit', sa.String(length=50), server_default='', nullable=False),
        sa.Column('description', sa.Text(), server_default='', nullable=False),
        sa.Column('position', sa.Integer(), server_default='0', nullable=False),
        sa.ForeignKeyConstraint(['base_id'], ['expert_bases.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('base_id', 'key'),
    )
    op.create_index(op.f('ix_expert_features_base_id'), 'expert_features', ['base_id'])
    op.create_table(
        'expert_classes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('base_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('position', sa.Integer(), server_default='0', nullable=False),
        sa.ForeignKeyConstraint(['base_id'], ['expert_bases.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('base_id', 'name'),
    )
    op.create_index(op.f('ix_expert_classes_base_id'), 'expert_classes', ['base_id'])
    op.create_table(
        'expert_cases',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('base_id', sa.Integer(), nullable=False),
        sa.Column('class_id', sa.Integer(), nullable=False),
        sa.Column('values', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('source', sa.String(length=20), server_default='admin', nullable=False),
        sa.Column('screening_id', sa.BigInteger(), nullable=True),
        sa.Column('verdict_ref', sa.String(length=100), nullable=True),
        sa.Column('note', sa.Text(), server_default='', nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(['base_id'], ['expert_bases.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['class_id'], ['expert_classes.id'], ondelete='RESTRICT'),
        sa.ForeignKeyConstraint(['screening_id'], ['screenings.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_expert_cases_base_id'), 'expert_cases', ['base_id'])
    op.create_index(op.f('ix_expert_cases_screening_id'), 'expert_cases', ['screening_id'])


def downgrade() -> None:
    op.drop_table('expert_cases')
    op.drop_table('expert_classes')
    op.drop_table('expert_features')
    op.drop_table('expert_bases')
