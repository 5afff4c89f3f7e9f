"""Receipt/document printer errors: typed faults with Russian messages."""

from __future__ import annotations

from typing import Final

from drivers.errors import DeviceRejected, DriverError


class DocumentInvalid(DriverError):
    """The document cannot be printed as given (``field`` names the part); nothing was sent."""

    code = "invalid_document"

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class ReceiptPrinterFault(DeviceRejected):
    code = "printer_fault"


class PaperOut(ReceiptPrinterFault):
    code = "paper_out"


class CoverOpen(ReceiptPrinterFault):
    code = "cover_open"


class CutterError(ReceiptPrinterFault):
    code = "cutter_error"


class PrinterOffline(ReceiptPrinterFault):
    code = "offline"


class PrinterFailure(ReceiptPrinterFault):
    """Unrecoverable, mechanical or overheat errors: a person has to look at the printer."""

    code = "printer_error"


FAULTS: Final[dict[str, tuple[type[ReceiptPrinterFault], str]]] = {
    "cover_open": (CoverOpen, "Открыта крышка принтера чеков: закройте крышку"),
    "paper_out": (PaperOut, "В принтере чеков закончилась бумага: вставьте новый рулон"),
    "cutter_error": (CutterError, "Ошибка автоотрезчика принтера чеков: проверьте, не замялась ли бумага"),
    "unrecoverable_error": (
        PrinterFailure,
        "Неисправимая ошибка принтера чеков: выключите и включите принтер",
    ),
    "overheat": (PrinterFailure, "Перегрев печатающей головки принтера чеков: подождите"),
    "mechanical_error": (PrinterFailure, "Механическая ошибка принтера чеков"),
    "offline": (PrinterOffline, "Принтер чеков не в сети (offline)"),
}


def fault_error(reason: str) -> ReceiptPrinterFault:
    cls, message = FAULTS.get(reason, (ReceiptPrinterFault, f"Принтер чеков не готов: {reason}"))
    return cls(message)


def fault_message(reason: str) -> str:
    return FAULTS.get(reason, (ReceiptPrinterFault, f"Принтер чеков не готов: {reason}"))[1]
