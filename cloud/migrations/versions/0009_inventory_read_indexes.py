"""Inventory reads: a covering ledger index for balance-at-a-moment probes, a store index on balances.

``stock_moves``: the ``(product_id, warehouse_id, posted_at, id)`` index now carries
``tenant_id``, ``qty_after_m`` and ``value_after_kop`` (INCLUDE, PostgreSQL), so the per-pair
probe of a balance at a past moment reads the index alone (index-only scan), never the table; it
replaces the plain index of the same key (one index to maintain, not two). ``stock_balances``:
``(tenant_id, store_id, product_id, warehouse_id)`` reads one store's balance rows in stock-screen
order, whatever the other tenants hold; none of its columns is ever updated, so balance updates
stay HOT.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 03:00:00.000000
"""

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('stock_moves', schema=None) as batch_op:
        batch_op.create_index('ix_stock_moves_pair_at_covering', ['product_id', 'warehouse_id', 'posted_at', 'id'],
                              unique=False, postgresql_include=['tenant_id', 'qty_after_m', 'value_after_kop'])
        batch_op.drop_index('ix_stock_moves_product_id_warehouse_id_posted_at_id')
    with op.batch_alter_table('stock_balances', schema=None) as batch_op:
        batch_op.create_index('ix_stock_balances_tenant_id_store_id_pair',
                              ['tenant_id', 'store_id', 'product_id', 'warehouse_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('stock_balances', schema=None) as batch_op:
        batch_op.drop_index('ix_stock_balances_tenant_id_store_id_pair')
    with op.batch_alter_table('stock_moves', schema=None) as batch_op:
        batch_op.create_index('ix_stock_moves_product_id_warehouse_id_posted_at_id',
                              ['product_id', 'warehouse_id', 'posted_at', 'id'], unique=False)
        batch_op.drop_index('ix_stock_moves_pair_at_covering')
