"""The fiscal-register family: shifts, receipts and corrections exactly once per command_id."""

from gateway.devices.fiscal.binding import FiscalBinding

__all__ = ["FiscalBinding"]
