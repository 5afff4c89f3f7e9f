"""sales_problems: a rejected lane event can be retried after a fix (resolved_at, resolution, retries).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sales_problems', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolution', sa.String(length=16), server_default='', nullable=False))
        batch_op.add_column(sa.Column('retries', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('sales_problems', schema=None) as batch_op:
        batch_op.drop_column('retries')
        batch_op.drop_column('resolution')
        batch_op.drop_column('resolved_at')
