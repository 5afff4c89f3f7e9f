"""Checkout at the store: lanes, the sale saga, the price list, the cashier page (see ``lane``)."""
