"""Inventory: the stock ledger with valuation, and the documents that post to it."""
