"""Management finance: cash flow (ДДС) and P&L (БДР) by articles, responsibility centres,
calculated indicators, budgets and plan vs actual, bank-statement import with allocation rules,
and how much of the money the rules cover.
"""
