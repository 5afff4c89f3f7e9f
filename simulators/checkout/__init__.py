"""A scripted cashier: drives a gateway's checkout lane through the cashier page's HTTP API (for load and tests)."""

from simulators.checkout.client import CashierClient, CheckoutRefused

__all__ = ["CashierClient", "CheckoutRefused"]
