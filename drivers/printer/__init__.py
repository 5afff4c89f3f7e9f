"""Receipt and document printers: ESC/POS via python-escpos (``ReceiptPrinter``)."""

from drivers.printer.errors import (
    CoverOpen,
    CutterError,
    DocumentInvalid,
    PaperOut,
    PrinterFailure,
    PrinterOffline,
    ReceiptPrinterFault,
)
from drivers.printer.escpos import DocumentState, ReceiptJobResult, ReceiptPrinter, compose

__all__ = [
    "CoverOpen",
    "CutterError",
    "DocumentInvalid",
    "DocumentState",
    "PaperOut",
    "PrinterFailure",
    "PrinterOffline",
    "ReceiptJobResult",
    "ReceiptPrinter",
    "ReceiptPrinterFault",
    "compose",
]
