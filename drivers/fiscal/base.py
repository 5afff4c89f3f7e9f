"""The fiscal-register API every driver implements (Shtrih now, ATOL later), its result types
and its errors. The gateway binds to this, never to a vendor driver."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from drivers.errors import DeviceRejected
from protocols.fiscal import Cashier, Correction, FiscalDocument, MarkingStatus, Receipt


@dataclass(frozen=True)
class RegisterStatus:
    mode: str  # shift_closed | shift_open | shift_expired | document_open | other
    shift_open: bool
    shift_number: int
    shift_over_24h: bool
    receipt_open: bool
    paper_present: bool
    cover_open: bool
    fn_number: str
    fn_expires: dt.date | None
    fn_memory_almost_full: bool
    last_fd_number: int
    receipts_in_shift: int
    device_time: dt.datetime | None = None
    shift_opened_at: dt.datetime | None = None  # known only to drivers that track it


@dataclass(frozen=True)
class MarkingCheck:
    """The register's answer on a marking code (FF61 / beginMarkingCodeValidation)."""

    code: str
    valid: bool
    checked_online: bool
    check_result: int  # tag 2106 bits
    code_type: int


class FiscalRejected(DeviceRejected):
    """The register refused; ``device_code`` is its own code, the message its Russian text."""

    code = "fiscal_rejected"

    def __init__(self, message: str, *, device_code: int, command: int = 0) -> None:
        super().__init__(message)
        self.device_code = device_code
        self.command = command


class PaperOut(FiscalRejected):
    code = "fiscal_paper_out"


class ShiftClosed(FiscalRejected):
    code = "fiscal_shift_closed"


class ShiftExpired(FiscalRejected):
    code = "fiscal_shift_expired"


class ShiftAlreadyOpen(FiscalRejected):
    code = "fiscal_shift_open"


class PaymentRejected(FiscalRejected):
    code = "fiscal_payment"


class FiscalStorageFault(FiscalRejected):
    code = "fiscal_storage"


class ReceiptRejected(DeviceRejected):
    """The receipt failed validation before anything was sent (our caller's fault)."""

    code = "fiscal_receipt_invalid"


@runtime_checkable
class FiscalRegister(Protocol):
    def open(self) -> None: ...

    def close(self) -> None: ...

    def status(self) -> RegisterStatus: ...

    def open_shift(self, cashier: Cashier) -> FiscalDocument: ...

    def sell(self, receipt: Receipt) -> FiscalDocument: ...

    def refund(self, receipt: Receipt) -> FiscalDocument: ...

    def correct(self, correction: Correction) -> FiscalDocument: ...

    def x_report(self) -> None: ...

    def close_shift(self, cashier: Cashier) -> FiscalDocument: ...

    def last_document(self) -> FiscalDocument | None: ...

    def document(self, fd_number: int) -> FiscalDocument | None: ...

    def check_marking_code(
        self, code: str, planned_status: MarkingStatus = MarkingStatus.PIECE_SOLD
    ) -> MarkingCheck: ...

    def cancel_receipt(self) -> bool: ...
