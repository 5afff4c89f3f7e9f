"""Label printer errors: typed faults with Russian messages, on top of ``drivers.errors``."""

from __future__ import annotations

from typing import Final

from drivers.errors import DeviceRejected, DriverError


class LabelDataInvalid(DriverError):
    """The caller's label data failed validation (``field`` names it); nothing was sent."""

    code = "invalid_label_data"

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class LabelPrinterFault(DeviceRejected):
    """The printer cannot print now (its state, not a protocol error)."""

    code = "printer_fault"


class PaperOut(LabelPrinterFault):
    code = "paper_out"


class HeadOpen(LabelPrinterFault):
    code = "head_open"


class RibbonOut(LabelPrinterFault):
    code = "ribbon_out"


class Paused(LabelPrinterFault):
    code = "paused"


class OverTemperature(LabelPrinterFault):
    code = "over_temperature"


class PrinterBusy(LabelPrinterFault):
    """Other labels are queued or printing: a new job could not be confirmed on its own."""

    code = "busy"


FAULTS: Final[dict[str, tuple[type[LabelPrinterFault], str]]] = {
    "head_open": (HeadOpen, "Открыта печатающая головка принтера этикеток: закройте крышку"),
    "paper_out": (PaperOut, "В принтере этикеток закончились этикетки: вставьте новый рулон"),
    "ribbon_out": (RibbonOut, "В принтере этикеток закончилась красящая лента (риббон)"),
    "over_temperature": (OverTemperature, "Перегрев печатающей головки принтера этикеток: подождите"),
    "paused": (Paused, "Принтер этикеток на паузе: нажмите кнопку PAUSE на принтере"),
}


def fault_error(reason: str) -> LabelPrinterFault:
    cls, message = FAULTS.get(reason, (LabelPrinterFault, f"Принтер этикеток не готов: {reason}"))
    return cls(message)


def fault_message(reason: str) -> str:
    return FAULTS.get(reason, (LabelPrinterFault, f"Принтер этикеток не готов: {reason}"))[1]
