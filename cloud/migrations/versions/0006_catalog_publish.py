"""catalog publish and handheld counts: catalog_publications (the price-list version of each store,
only growing, and what it was built from), inventory_count_tasks and inventory_count_task_lines
(handheld ``count`` tasks of stock counts and their scanned lines, once per line_id).

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-26 17:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('catalog_publications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('items', sa.Integer(), nullable=False),
    sa.Column('built_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_price_id', sa.BigInteger(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('gateways', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_catalog_publications_store_id_stores')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_catalog_publications_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_publications')),
    sa.UniqueConstraint('store_id', name=op.f('uq_catalog_publications_store_id'))
    )
    with op.batch_alter_table('catalog_publications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_publications_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('inventory_count_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=48), nullable=False),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.Column('event_cursor', sa.BigInteger(), nullable=False),
    sa.Column('lines', sa.Integer(), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_by', sa.String(length=64), nullable=False),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['stock_documents.id'], name=op.f('fk_inventory_count_tasks_document_id_stock_documents')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_inventory_count_tasks_store_id_stores')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_inventory_count_tasks_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inventory_count_tasks')),
    sa.UniqueConstraint('tenant_id', 'task_id', name=op.f('uq_inventory_count_tasks_tenant_id_task_id'))
    )
    with op.batch_alter_table('inventory_count_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_inventory_count_tasks_closed', ['closed'], unique=False)
        batch_op.create_index(batch_op.f('ix_inventory_count_tasks_document_id'), ['document_id'], unique=False)

    op.create_table('inventory_count_task_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('count_task_id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('line_id', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('barcode', sa.String(length=300), nullable=False),
    sa.Column('qty_m', sa.BigInteger(), nullable=False),
    sa.Column('marking', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('detail', sa.String(length=300), nullable=False),
    sa.Column('scanned_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['count_task_id'], ['inventory_count_tasks.id'], name=op.f('fk_inventory_count_task_lines_count_task_id_inventory_count_tasks')),
    sa.ForeignKeyConstraint(['document_id'], ['stock_documents.id'], name=op.f('fk_inventory_count_task_lines_document_id_stock_documents')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_inventory_count_task_lines_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inventory_count_task_lines')),
    sa.UniqueConstraint('document_id', 'line_id', name=op.f('uq_inventory_count_task_lines_document_id_line_id'))
    )
    with op.batch_alter_table('inventory_count_task_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inventory_count_task_lines_count_task_id'), ['count_task_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inventory_count_task_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inventory_count_task_lines_count_task_id'))

    op.drop_table('inventory_count_task_lines')
    with op.batch_alter_table('inventory_count_tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inventory_count_tasks_document_id'))
        batch_op.drop_index('ix_inventory_count_tasks_closed')

    op.drop_table('inventory_count_tasks')
    with op.batch_alter_table('catalog_publications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalog_publications_tenant_id'))

    op.drop_table('catalog_publications')
