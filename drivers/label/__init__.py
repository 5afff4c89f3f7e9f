"""Label printers: ZPL II over TCP 9100, serial/pty or USB (``LabelPrinter``)."""

from drivers.label.errors import (
    HeadOpen,
    LabelDataInvalid,
    LabelPrinterFault,
    OverTemperature,
    PaperOut,
    Paused,
    PrinterBusy,
    RibbonOut,
)
from drivers.label.zebra import JobState, LabelJobResult, LabelPrinter

__all__ = [
    "HeadOpen",
    "JobState",
    "LabelDataInvalid",
    "LabelJobResult",
    "LabelPrinter",
    "LabelPrinterFault",
    "OverTemperature",
    "PaperOut",
    "Paused",
    "PrinterBusy",
    "RibbonOut",
]
