"""Catalog: products, units, barcodes, VAT rates by date, store prices by date, warehouses."""
