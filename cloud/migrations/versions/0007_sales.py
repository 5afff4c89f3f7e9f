"""sales: receipts from lane events (sales, sale_lines, sale_payments), returns (sale_returns,
sale_return_lines), shifts with Z data (sales_shifts), cash_movements, and the ingestion cursor
(sales_cursor) and reported problems (sales_problems). Each keyed per tenant by the event's own id.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 17:37:20.994983
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sales_cursor',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('event_cursor', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_sales_cursor'))
    )
    op.create_table('sales_problems',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.BigInteger(), nullable=False),
    sa.Column('event_type', sa.String(length=32), nullable=False),
    sa.Column('ref', sa.String(length=64), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_sales_problems_store_id_stores')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sales_problems_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_problems')),
    sa.UniqueConstraint('event_id', 'code', 'ref', name=op.f('uq_sales_problems_event_id_code_ref'))
    )
    with op.batch_alter_table('sales_problems', schema=None) as batch_op:
        batch_op.create_index('ix_sales_problems_tenant_id', ['tenant_id'], unique=False)

    op.create_table('cash_movements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('lane', sa.String(length=64), nullable=False),
    sa.Column('move_id', sa.String(length=64), nullable=False),
    sa.Column('shift_id', sa.String(length=64), nullable=True),
    sa.Column('cashier', sa.String(length=128), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('amount_kop', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('moved_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_cash_movements_device_id_devices')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_cash_movements_store_id_stores')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_cash_movements_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cash_movements')),
    sa.UniqueConstraint('tenant_id', 'move_id', name=op.f('uq_cash_movements_tenant_id_move_id'))
    )
    with op.batch_alter_table('cash_movements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cash_movements_store_id'), ['store_id'], unique=False)

    op.create_table('sales',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('lane', sa.String(length=64), nullable=False),
    sa.Column('sale_id', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.BigInteger(), nullable=False),
    sa.Column('shift_id', sa.String(length=64), nullable=True),
    sa.Column('cashier', sa.String(length=128), nullable=False),
    sa.Column('cashier_inn', sa.String(length=12), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('order_id', sa.String(length=64), nullable=True),
    sa.Column('total_kop', sa.BigInteger(), nullable=False),
    sa.Column('change_kop', sa.BigInteger(), nullable=False),
    sa.Column('returned_kop', sa.BigInteger(), nullable=False),
    sa.Column('fd_number', sa.BigInteger(), nullable=True),
    sa.Column('fiscal_sign', sa.BigInteger(), nullable=True),
    sa.Column('fn_number', sa.String(length=32), nullable=True),
    sa.Column('shift_number', sa.Integer(), nullable=True),
    sa.Column('receipt_number', sa.Integer(), nullable=True),
    sa.Column('fiscal_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('cancel_reason', sa.String(length=300), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_sales_device_id_devices')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_sales_store_id_stores')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sales_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales')),
    sa.UniqueConstraint('tenant_id', 'sale_id', name=op.f('uq_sales_tenant_id_sale_id'))
    )
    with op.batch_alter_table('sales', schema=None) as batch_op:
        batch_op.create_index('ix_sales_store_id_completed_at', ['store_id', 'completed_at'], unique=False)
        batch_op.create_index('ix_sales_tenant_id_business_date', ['tenant_id', 'business_date'], unique=False)

    op.create_table('sales_shifts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('lane', sa.String(length=64), nullable=False),
    sa.Column('shift_id', sa.String(length=64), nullable=False),
    sa.Column('shift_number', sa.Integer(), nullable=True),
    sa.Column('cashier', sa.String(length=128), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('open_report', sa.JSON(), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.String(length=128), nullable=False),
    sa.Column('z_report', sa.JSON(), nullable=True),
    sa.Column('totals', sa.JSON(), nullable=True),
    sa.Column('fiscal_receipts', sa.Integer(), nullable=True),
    sa.Column('fn_receipts', sa.Integer(), nullable=True),
    sa.Column('reconciliation', sa.JSON(), nullable=True),
    sa.Column('differences', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_sales_shifts_device_id_devices')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_sales_shifts_store_id_stores')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sales_shifts_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_shifts')),
    sa.UniqueConstraint('tenant_id', 'shift_id', name=op.f('uq_sales_shifts_tenant_id_shift_id'))
    )
    with op.batch_alter_table('sales_shifts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sales_shifts_store_id'), ['store_id'], unique=False)

    op.create_table('sale_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sale_pk', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('product_ref', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('qty_m', sa.BigInteger(), nullable=False),
    sa.Column('measure', sa.String(length=8), nullable=False),
    sa.Column('price_kop', sa.BigInteger(), nullable=False),
    sa.Column('amount_kop', sa.BigInteger(), nullable=False),
    sa.Column('vat', sa.String(length=20), nullable=False),
    sa.Column('vat_rate', sa.String(length=32), nullable=False),
    sa.Column('marking_codes', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('move_id', sa.BigInteger(), nullable=True),
    sa.Column('returned_m', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('detail', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_sale_lines_product_id_products')),
    sa.ForeignKeyConstraint(['sale_pk'], ['sales.id'], name=op.f('fk_sale_lines_sale_pk_sales')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sale_lines')),
    sa.UniqueConstraint('sale_pk', 'line_no', name=op.f('uq_sale_lines_sale_pk_line_no'))
    )
    with op.batch_alter_table('sale_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sale_lines_product_id'), ['product_id'], unique=False)

    op.create_table('sale_returns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('lane', sa.String(length=64), nullable=False),
    sa.Column('return_id', sa.String(length=64), nullable=False),
    sa.Column('sale_ref', sa.String(length=64), nullable=False),
    sa.Column('sale_pk', sa.Integer(), nullable=True),
    sa.Column('event_id', sa.BigInteger(), nullable=False),
    sa.Column('shift_id', sa.String(length=64), nullable=True),
    sa.Column('cashier', sa.String(length=128), nullable=False),
    sa.Column('total_kop', sa.BigInteger(), nullable=False),
    sa.Column('fd_number', sa.BigInteger(), nullable=True),
    sa.Column('fiscal_sign', sa.BigInteger(), nullable=True),
    sa.Column('fn_number', sa.String(length=32), nullable=True),
    sa.Column('shift_number', sa.Integer(), nullable=True),
    sa.Column('receipt_number', sa.Integer(), nullable=True),
    sa.Column('fiscal_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_sale_returns_device_id_devices')),
    sa.ForeignKeyConstraint(['sale_pk'], ['sales.id'], name=op.f('fk_sale_returns_sale_pk_sales')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_sale_returns_store_id_stores')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sale_returns_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sale_returns')),
    sa.UniqueConstraint('tenant_id', 'return_id', name=op.f('uq_sale_returns_tenant_id_return_id'))
    )
    with op.batch_alter_table('sale_returns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sale_returns_sale_pk'), ['sale_pk'], unique=False)
        batch_op.create_index('ix_sale_returns_tenant_id_business_date', ['tenant_id', 'business_date'], unique=False)

    op.create_table('sale_payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sale_pk', sa.Integer(), nullable=True),
    sa.Column('return_pk', sa.Integer(), nullable=True),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('amount_kop', sa.BigInteger(), nullable=False),
    sa.Column('operation_id', sa.String(length=64), nullable=True),
    sa.Column('rrn', sa.String(length=32), nullable=True),
    sa.Column('auth_code', sa.String(length=32), nullable=True),
    sa.Column('card_mask', sa.String(length=32), nullable=True),
    sa.Column('voided', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['return_pk'], ['sale_returns.id'], name=op.f('fk_sale_payments_return_pk_sale_returns')),
    sa.ForeignKeyConstraint(['sale_pk'], ['sales.id'], name=op.f('fk_sale_payments_sale_pk_sales')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sale_payments'))
    )
    with op.batch_alter_table('sale_payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sale_payments_return_pk'), ['return_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_sale_payments_sale_pk'), ['sale_pk'], unique=False)

    op.create_table('sale_return_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('return_pk', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('sale_line_pk', sa.Integer(), nullable=True),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('product_ref', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('qty_m', sa.BigInteger(), nullable=False),
    sa.Column('price_kop', sa.BigInteger(), nullable=False),
    sa.Column('amount_kop', sa.BigInteger(), nullable=False),
    sa.Column('vat', sa.String(length=20), nullable=False),
    sa.Column('marking_codes', sa.JSON(), nullable=False),
    sa.Column('move_id', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('detail', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_sale_return_lines_product_id_products')),
    sa.ForeignKeyConstraint(['return_pk'], ['sale_returns.id'], name=op.f('fk_sale_return_lines_return_pk_sale_returns')),
    sa.ForeignKeyConstraint(['sale_line_pk'], ['sale_lines.id'], name=op.f('fk_sale_return_lines_sale_line_pk_sale_lines')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sale_return_lines')),
    sa.UniqueConstraint('return_pk', 'line_no', name=op.f('uq_sale_return_lines_return_pk_line_no'))
    )


def downgrade() -> None:
    op.drop_table('sale_return_lines')
    with op.batch_alter_table('sale_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sale_payments_sale_pk'))
        batch_op.drop_index(batch_op.f('ix_sale_payments_return_pk'))

    op.drop_table('sale_payments')
    with op.batch_alter_table('sale_returns', schema=None) as batch_op:
        batch_op.drop_index('ix_sale_returns_tenant_id_business_date')
        batch_op.drop_index(batch_op.f('ix_sale_returns_sale_pk'))

    op.drop_table('sale_returns')
    with op.batch_alter_table('sale_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sale_lines_product_id'))

    op.drop_table('sale_lines')
    with op.batch_alter_table('sales_shifts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sales_shifts_store_id'))

    op.drop_table('sales_shifts')
    with op.batch_alter_table('sales', schema=None) as batch_op:
        batch_op.drop_index('ix_sales_tenant_id_business_date')
        batch_op.drop_index('ix_sales_store_id_completed_at')

    op.drop_table('sales')
    with op.batch_alter_table('cash_movements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cash_movements_store_id'))

    op.drop_table('cash_movements')
    with op.batch_alter_table('sales_problems', schema=None) as batch_op:
        batch_op.drop_index('ix_sales_problems_tenant_id')

    op.drop_table('sales_problems')
    op.drop_table('sales_cursor')
