"""Management finance: cash flow (ДДС) and P&L (БДР) articles, calculated indicators,
allocation rules for bank operations and how much of the money they cover.

Pure logic only here (no tables, no HTTP): the services and routers build on these.
"""
