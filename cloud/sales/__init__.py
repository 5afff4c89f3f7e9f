"""Sales: checkout receipts, returns, shifts and cash movements ingested from lane events; the sales report."""
