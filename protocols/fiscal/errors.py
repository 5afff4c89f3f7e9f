"""Fiscal model errors: one base, split into the caller's fault and the peer's fault."""

from __future__ import annotations


class FiscalError(Exception):
    """Base of every fiscal-model error. ``message`` is Russian, for the staff."""

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__


class ReceiptInvalid(FiscalError, ValueError):
    """Our (the caller's) fault: a receipt that must not be sent to a register.

    ``field`` names the offending part (``items[2].quantity``, ``payments.electronic``).
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class FiscalDataError(FiscalError):
    """The peer's fault: fiscal data from a device or a file that does not parse."""
