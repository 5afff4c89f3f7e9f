"""The payment terminal family: pay, refund, cancel, reconcile, status; ``payment`` events; exactly-once."""

from gateway.devices.payment.binding import PaymentBinding

__all__ = ["PaymentBinding"]
