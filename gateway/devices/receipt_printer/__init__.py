"""The receipt printer family: ``print_document`` (non-fiscal ESC/POS documents), ``status``."""

from gateway.devices.receipt_printer.binding import ReceiptPrinterBinding

__all__ = ["ReceiptPrinterBinding"]
