"""Inventory reads: a store index on stock_balances for the whole-store balance read.

``stock_balances (tenant_id, store_id, product_id, warehouse_id)`` reads one store's balance rows
in stock-screen order, whatever the other tenants hold; none of its columns is ever updated, so
balance updates stay HOT.

Tried and not kept: making the ledger's ``(product_id, warehouse_id, posted_at, id)`` index
covering (``INCLUDE (tenant_id, qty_after_m, value_after_kop)``) turns the per-pair probe of a
past-moment read index-only (whole store p95 ~45 ms against ~100 ms), but in an A/B on the same
box posting and the backdated recompute came out slower relative to their row-by-row baselines
(×4.2 against ×7.9; ×16.9 against ×23.5): the recompute rewrites exactly the included columns,
and the posting targets are the ones with hard limits.

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
    with op.batch_alter_table('stock_balances', schema=None) as batch_op:
        batch_op.create_index('ix_stock_balances_tenant_id_store_id_pair',
                              ['tenant_id', 'store_id', 'product_id', 'warehouse_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('stock_balances', schema=None) as batch_op:
        batch_op.drop_index('ix_stock_balances_tenant_id_store_id_pair')
