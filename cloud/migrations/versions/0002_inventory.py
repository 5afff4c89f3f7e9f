"""Inventory: catalog (products, units, barcodes, VAT rates, prices, warehouses), the stock ledger
(stock_moves, stock_balances), documents, write-off reasons, marking codes.

Quantities are BIGINT thousandths of the base unit, money BIGINT kopecks. Seeds the VAT rates
(20 % until 2025, 22 % from 2026-01-01, 10 %, 0 %, none) and the default write-off reasons with
their P&L articles: data, editable, never constants in code.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 16:34:09.472961
"""

import datetime as dt

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('vat_rates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('rate_bp', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vat_rates')),
    sa.UniqueConstraint('kind', 'valid_from', name=op.f('uq_vat_rates_kind_valid_from'))
    )
    op.create_table('inventory_settings',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('valuation', sa.String(length=16), nullable=False),
    sa.Column('negative_stock', sa.String(length=16), nullable=False),
    sa.Column('inline_recompute_limit', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_inventory_settings_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_inventory_settings'))
    )
    op.create_table('products',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('base_unit', sa.String(length=16), nullable=False),
    sa.Column('weighed', sa.Boolean(), nullable=False),
    sa.Column('plu', sa.Integer(), nullable=True),
    sa.Column('marking', sa.String(length=16), nullable=False),
    sa.Column('vat_kind', sa.String(length=16), nullable=False),
    sa.Column('shelf_life_days', sa.Integer(), nullable=True),
    sa.Column('weight_g', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_products_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_products')),
    sa.UniqueConstraint('tenant_id', 'plu', name=op.f('uq_products_tenant_id_plu')),
    sa.UniqueConstraint('tenant_id', 'sku', name=op.f('uq_products_tenant_id_sku'))
    )
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_products_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('write_off_reasons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=True),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('pnl_article', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_write_off_reasons_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_write_off_reasons')),
    sa.UniqueConstraint('tenant_id', 'code', name=op.f('uq_write_off_reasons_tenant_id_code'))
    )
    op.create_table('barcodes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('gtin', sa.String(length=14), nullable=True),
    sa.Column('unit', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_barcodes_product_id_products')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_barcodes_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_barcodes')),
    sa.UniqueConstraint('tenant_id', 'code', name=op.f('uq_barcodes_tenant_id_code'))
    )
    with op.batch_alter_table('barcodes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_barcodes_product_id'), ['product_id'], unique=False)

    op.create_table('closed_periods',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=True),
    sa.Column('closed_through', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_closed_periods_store_id_stores')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_closed_periods_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_closed_periods')),
    sa.UniqueConstraint('tenant_id', 'store_id', name=op.f('uq_closed_periods_tenant_id_store_id'))
    )
    op.create_table('doc_counters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('doc_type', sa.String(length=16), nullable=False),
    sa.Column('last_number', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_doc_counters_store_id_stores')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_doc_counters_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_doc_counters')),
    sa.UniqueConstraint('store_id', 'doc_type', name=op.f('uq_doc_counters_store_id_doc_type'))
    )
    op.create_table('prices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('price_kop', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_prices_product_id_products')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_prices_store_id_stores')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_prices_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prices')),
    sa.UniqueConstraint('store_id', 'product_id', 'valid_from', name=op.f('uq_prices_store_id_product_id_valid_from'))
    )
    with op.batch_alter_table('prices', schema=None) as batch_op:
        batch_op.create_index('ix_prices_product_id_store_id_valid_from', ['product_id', 'store_id', 'valid_from'], unique=False)

    op.create_table('product_units',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('factor_m', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_product_units_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_product_units')),
    sa.UniqueConstraint('product_id', 'unit', name=op.f('uq_product_units_product_id_unit'))
    )
    op.create_table('warehouses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_warehouses_store_id_stores')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_warehouses_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_warehouses')),
    sa.UniqueConstraint('store_id', 'code', name=op.f('uq_warehouses_store_id_code'))
    )
    with op.batch_alter_table('warehouses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_warehouses_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('stock_balances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('warehouse_id', sa.Integer(), nullable=False),
    sa.Column('qty_m', sa.BigInteger(), nullable=False),
    sa.Column('value_kop', sa.BigInteger(), nullable=False),
    sa.Column('dirty_from', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dirty_from_id', sa.Integer(), nullable=True),
    sa.Column('recomputed_rows', sa.Integer(), nullable=False),
    sa.Column('last_posted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_move_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_stock_balances_product_id_products')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_stock_balances_store_id_stores')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_stock_balances_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], name=op.f('fk_stock_balances_warehouse_id_warehouses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_balances')),
    sa.UniqueConstraint('product_id', 'warehouse_id', name=op.f('uq_stock_balances_product_id_warehouse_id'))
    )
    with op.batch_alter_table('stock_balances', schema=None) as batch_op:
        batch_op.create_index('ix_stock_balances_store_id', ['store_id'], unique=False)

    op.create_table('stock_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('doc_type', sa.String(length=16), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('posted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('warehouse_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('comment', sa.String(length=1000), nullable=False),
    sa.Column('supplier', sa.String(length=200), nullable=False),
    sa.Column('invoice_number', sa.String(length=64), nullable=False),
    sa.Column('invoice_date', sa.Date(), nullable=True),
    sa.Column('extra_cost_kop', sa.BigInteger(), nullable=False),
    sa.Column('extra_cost_split', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('return_of_id', sa.Integer(), nullable=True),
    sa.Column('dest_warehouse_id', sa.Integer(), nullable=True),
    sa.Column('transit_warehouse_id', sa.Integer(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_stock_documents_author_id_users')),
    sa.ForeignKeyConstraint(['dest_warehouse_id'], ['warehouses.id'], name=op.f('fk_stock_documents_dest_warehouse_id_warehouses')),
    sa.ForeignKeyConstraint(['return_of_id'], ['stock_documents.id'], name=op.f('fk_stock_documents_return_of_id_stock_documents')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_stock_documents_store_id_stores')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_stock_documents_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['transit_warehouse_id'], ['warehouses.id'], name=op.f('fk_stock_documents_transit_warehouse_id_warehouses')),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], name=op.f('fk_stock_documents_warehouse_id_warehouses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_documents')),
    sa.UniqueConstraint('store_id', 'doc_type', 'number', name=op.f('uq_stock_documents_store_id_doc_type_number'))
    )
    with op.batch_alter_table('stock_documents', schema=None) as batch_op:
        batch_op.create_index('ix_stock_documents_tenant_id_doc_type', ['tenant_id', 'doc_type'], unique=False)

    op.create_table('marking_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('identity', sa.String(length=64), nullable=False),
    sa.Column('raw', sa.String(length=300), nullable=False),
    sa.Column('gtin', sa.String(length=14), nullable=True),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('is_box', sa.Boolean(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('warehouse_id', sa.Integer(), nullable=True),
    sa.Column('document_id', sa.Integer(), nullable=True),
    sa.Column('receipt_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['stock_documents.id'], name=op.f('fk_marking_codes_document_id_stock_documents')),
    sa.ForeignKeyConstraint(['parent_id'], ['marking_codes.id'], name=op.f('fk_marking_codes_parent_id_marking_codes')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_marking_codes_product_id_products')),
    sa.ForeignKeyConstraint(['receipt_id'], ['stock_documents.id'], name=op.f('fk_marking_codes_receipt_id_stock_documents')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_marking_codes_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], name=op.f('fk_marking_codes_warehouse_id_warehouses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_marking_codes')),
    sa.UniqueConstraint('tenant_id', 'identity', name=op.f('uq_marking_codes_tenant_id_identity'))
    )
    with op.batch_alter_table('marking_codes', schema=None) as batch_op:
        batch_op.create_index('ix_marking_codes_product_id_state', ['product_id', 'state'], unique=False)

    op.create_table('stock_document_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('qty_m', sa.BigInteger(), nullable=False),
    sa.Column('amount_kop', sa.BigInteger(), nullable=True),
    sa.Column('cost_kop', sa.BigInteger(), nullable=True),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('receipt_line_id', sa.Integer(), nullable=True),
    sa.Column('expected_qty_m', sa.BigInteger(), nullable=True),
    sa.Column('counted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_qty_m', sa.BigInteger(), nullable=True),
    sa.Column('codes', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['stock_documents.id'], name=op.f('fk_stock_document_lines_document_id_stock_documents')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_stock_document_lines_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_document_lines')),
    sa.UniqueConstraint('document_id', 'line_no', name=op.f('uq_stock_document_lines_document_id_line_no'))
    )
    op.create_table('stock_moves',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('warehouse_id', sa.Integer(), nullable=False),
    sa.Column('posted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('doc_type', sa.String(length=16), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=True),
    sa.Column('line_id', sa.Integer(), nullable=True),
    sa.Column('qty_m', sa.BigInteger(), nullable=False),
    sa.Column('value_kop', sa.BigInteger(), nullable=False),
    sa.Column('correction_kop', sa.BigInteger(), nullable=False),
    sa.Column('cost_mode', sa.String(length=8), nullable=False),
    sa.Column('fixed_value_kop', sa.BigInteger(), nullable=True),
    sa.Column('source_move_id', sa.Integer(), nullable=True),
    sa.Column('qty_after_m', sa.BigInteger(), nullable=False),
    sa.Column('value_after_kop', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.JSON(), nullable=True),
    sa.Column('cancelled', sa.Boolean(), nullable=False),
    sa.Column('reversal_of_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['stock_documents.id'], name=op.f('fk_stock_moves_document_id_stock_documents')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_stock_moves_product_id_products')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_stock_moves_store_id_stores')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_stock_moves_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], name=op.f('fk_stock_moves_warehouse_id_warehouses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_moves'))
    )
    with op.batch_alter_table('stock_moves', schema=None) as batch_op:
        batch_op.create_index('ix_stock_moves_document_id', ['document_id'], unique=False)
        batch_op.create_index('ix_stock_moves_product_id_warehouse_id_posted_at_id', ['product_id', 'warehouse_id', 'posted_at', 'id'], unique=False)
        batch_op.create_index('ix_stock_moves_source_move_id', ['source_move_id'], unique=False)

    op.create_table('marking_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code_id', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(length=16), nullable=False),
    sa.Column('from_state', sa.String(length=16), nullable=False),
    sa.Column('to_state', sa.String(length=16), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['code_id'], ['marking_codes.id'], name=op.f('fk_marking_events_code_id_marking_codes')),
    sa.ForeignKeyConstraint(['document_id'], ['stock_documents.id'], name=op.f('fk_marking_events_document_id_stock_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_marking_events'))
    )
    with op.batch_alter_table('marking_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_marking_events_code_id'), ['code_id'], unique=False)

    vat = sa.table('vat_rates', sa.column('kind', sa.String), sa.column('valid_from', sa.Date),
                   sa.column('rate_bp', sa.Integer))
    op.bulk_insert(vat, [
        {'kind': 'standard', 'valid_from': dt.date(2019, 1, 1), 'rate_bp': 2000},
        {'kind': 'standard', 'valid_from': dt.date(2026, 1, 1), 'rate_bp': 2200},
        {'kind': 'reduced', 'valid_from': dt.date(2019, 1, 1), 'rate_bp': 1000},
        {'kind': 'zero', 'valid_from': dt.date(2019, 1, 1), 'rate_bp': 0},
        {'kind': 'none', 'valid_from': dt.date(2019, 1, 1), 'rate_bp': None},
    ])
    reasons = sa.table('write_off_reasons', sa.column('tenant_id', sa.Integer), sa.column('code', sa.String),
                       sa.column('name', sa.String), sa.column('pnl_article', sa.String))
    op.bulk_insert(reasons, [
        {'tenant_id': None, 'code': 'spoilage', 'name': 'Порча', 'pnl_article': 'losses.spoilage'},
        {'tenant_id': None, 'code': 'expiry', 'name': 'Истёк срок годности', 'pnl_article': 'losses.expiry'},
        {'tenant_id': None, 'code': 'damage', 'name': 'Бой, повреждение', 'pnl_article': 'losses.damage'},
        {'tenant_id': None, 'code': 'tasting', 'name': 'Дегустация', 'pnl_article': 'marketing.tasting'},
        {'tenant_id': None, 'code': 'own_needs', 'name': 'Собственные нужды', 'pnl_article': 'opex.own_needs'},
    ])


def downgrade() -> None:
    with op.batch_alter_table('marking_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_marking_events_code_id'))

    op.drop_table('marking_events')
    with op.batch_alter_table('stock_moves', schema=None) as batch_op:
        batch_op.drop_index('ix_stock_moves_source_move_id')
        batch_op.drop_index('ix_stock_moves_product_id_warehouse_id_posted_at_id')
        batch_op.drop_index('ix_stock_moves_document_id')

    op.drop_table('stock_moves')
    op.drop_table('stock_document_lines')
    with op.batch_alter_table('marking_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_marking_codes_product_id_state')

    op.drop_table('marking_codes')
    with op.batch_alter_table('stock_documents', schema=None) as batch_op:
        batch_op.drop_index('ix_stock_documents_tenant_id_doc_type')

    op.drop_table('stock_documents')
    with op.batch_alter_table('stock_balances', schema=None) as batch_op:
        batch_op.drop_index('ix_stock_balances_store_id')

    op.drop_table('stock_balances')
    with op.batch_alter_table('warehouses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_warehouses_tenant_id'))

    op.drop_table('warehouses')
    op.drop_table('product_units')
    with op.batch_alter_table('prices', schema=None) as batch_op:
        batch_op.drop_index('ix_prices_product_id_store_id_valid_from')

    op.drop_table('prices')
    op.drop_table('doc_counters')
    op.drop_table('closed_periods')
    with op.batch_alter_table('barcodes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_barcodes_product_id'))

    op.drop_table('barcodes')
    op.drop_table('write_off_reasons')
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_products_tenant_id'))

    op.drop_table('products')
    op.drop_table('inventory_settings')
    op.drop_table('vat_rates')
