"""Shtrih-M fiscal register driver: ``SerialTransport`` + the sans-I/O ``protocols.shtrih``.

One command at a time through ``HostLink``; device refusals become ``FiscalRejected``
subclasses with the Shtrih code and its Russian message; link loss becomes
``DeviceTimeout`` (the command may have run: ask ``last_document()``) or
``DeviceUnavailable``. A receipt is validated in full before its first byte is sent.

Receipt sequence (FFD 1.2, FiscalPrinterDevice.pas): per item [FF61 → FF69 → FF67] → FF46,
then FF0C tags (1021/1203 cashier, 1008 customer), then FF45. A refusal before FF45 cancels
the receipt (88) when the printer allows it; a receipt left open (no paper to print the
cancellation) is cancelled before the next document.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from types import MappingProxyType
from typing import Final

from drivers.errors import DeviceProtocolError, DeviceTimeout, DeviceUnavailable
from drivers.fiscal.base import (
    FiscalRejected,
    FiscalStorageFault,
    MarkingCheck,
    PaperOut,
    PaymentRejected,
    ReceiptRejected,
    RegisterStatus,
    ShiftAlreadyOpen,
    ShiftClosed,
    ShiftExpired,
)
from drivers.transport import SerialTransport, Transport
from protocols import shtrih
from protocols.fiscal import (
    Cashier,
    Correction,
    FiscalDocument,
    MarkingStatus,
    Receipt,
    ReceiptInvalid,
    SettlementSign,
    VatKind,
    from_kopecks,
    kopecks,
)
from protocols.shtrih import errors as se
from protocols.shtrih import messages as M
from protocols.shtrih.fields import MONEY_UNKNOWN
from protocols.shtrih.machine import AnswerReceived, HostLink, LinkLost, NeedData

TAX_BITS: Final = MappingProxyType({
    VatKind.GENERAL: 0x01, VatKind.REDUCED: 0x02, VatKind.ZERO: 0x04, VatKind.NONE: 0x08,
    VatKind.GENERAL_CALCULATED: 0x10, VatKind.REDUCED_CALCULATED: 0x20,
    VatKind.USN5: 0x81, VatKind.USN7: 0x82, VatKind.USN5_CALCULATED: 0x84, VatKind.USN7_CALCULATED: 0x88,
})  # fmt: skip
"""FF46 tax byte per VAT kind (bitmask per OPOS; USN 5/7 values [K] from a public driver)."""

TAX_SLOT: Final = MappingProxyType({
    VatKind.GENERAL: 0, VatKind.REDUCED: 1, VatKind.ZERO: 2, VatKind.NONE: 3,
    VatKind.GENERAL_CALCULATED: 4, VatKind.REDUCED_CALCULATED: 5,
})  # fmt: skip
"""FF45/FF4A tax-sum slot per kind (slots 2 and 3 carry turnover, not tax)."""

_ERRORS: Final = MappingProxyType({
    se.PaperOut: PaperOut, se.ShiftNotOpen: ShiftClosed, se.ShiftExpired: ShiftExpired,
    se.ShiftAlreadyOpen: ShiftAlreadyOpen, se.PaymentError: PaymentRejected,
    se.FiscalStorageError: FiscalStorageFault,
})  # fmt: skip

_MODES: Final = {M.Mode.SHIFT_CLOSED: "shift_closed", M.Mode.SHIFT_OPEN: "shift_open",
                 M.Mode.SHIFT_EXPIRED: "shift_expired", M.Mode.DOCUMENT_OPEN: "document_open"}  # fmt: skip
_KINDS: Final = {M.FnDocumentType.RECEIPT: "receipt", M.FnDocumentType.CORRECTION: "correction",
                 M.FnDocumentType.SHIFT_OPEN: "shift_open", M.FnDocumentType.SHIFT_CLOSE: "shift_close"}  # fmt: skip
PRINT_TIMEOUT: Final = 30.0
QUERY_TIMEOUT: Final = 3.0


def tlv(tag: int, value: bytes) -> bytes:
    """FN TLV: tag u16 LE, length u16 LE, value."""
    return tag.to_bytes(2, "little") + len(value).to_bytes(2, "little") + value


def tlv_text(tag: int, text: str) -> bytes:
    return tlv(tag, text.encode("cp866"))


class ShtrihFiscalRegister:
    """``FiscalRegister`` over Shtrih-M protocol v1 (serial, pty, ``socket://``/``tcp://`` 7778)."""

    def __init__(
        self,
        url: str,
        password: int = 30,
        *,
        baudrate: int = 115200,
        transport: Transport | None = None,
        today: Callable[[], dt.date] = dt.date.today,
        enq_timeout: float = 0.5,
        attempts: int = 5,
    ) -> None:
        self.url = url
        self.password = password
        self._transport: Transport = transport or SerialTransport(url, baudrate=baudrate)
        self._link = HostLink(enq_timeout=enq_timeout, ack_timeout=enq_timeout, attempts=attempts)
        self._today = today
        self._fn_number = ""

    # --- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        self._transport.open()
        self._link.reset()

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> ShtrihFiscalRegister:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one command ---------------------------------------------------------------------

    def _call(self, request: M.Request, timeout: float = QUERY_TIMEOUT) -> M.Answer:
        body = request.encode()
        if not self._transport.is_open:
            self.open()
        link = self._link
        if link.state is not shtrih.machine.HostState.IDLE:
            link.reset()
        link.start(body, time.monotonic(), answer_timeout=timeout)
        while True:
            out = link.data_to_send()
            if out:
                self._transport.write(out)
            event = link.next_event()
            if isinstance(event, AnswerReceived):
                break
            if isinstance(event, LinkLost):
                link.reset()
                if event.command_sent:
                    raise DeviceTimeout(
                        f"ККТ не ответила на команду {request.CODE:X}h: результат неизвестен ({event.reason})"
                    )
                raise DeviceUnavailable(f"Нет связи с ККТ на {self.url}: {event.reason}")
            if not isinstance(event, NeedData):
                continue  # a stale answer was drained
            deadline = link.deadline if link.deadline is not None else time.monotonic()
            data = self._transport.read(512, max(deadline - time.monotonic(), 0.0))
            now = time.monotonic()
            if data:
                link.receive_data(data, now)
            else:
                link.handle_timeout(now)
        try:
            decoded = M.decode_answer(event.body)
        except se.RemoteProtocolError as exc:
            raise DeviceProtocolError(f"ККТ прислала непонятный ответ: {exc}") from exc
        if isinstance(decoded, M.Refused):
            raise self._rejected(decoded.error())
        if decoded.command != request.CODE:
            raise DeviceProtocolError(f"ответ на команду {decoded.command:X}h вместо {request.CODE:X}h")
        return decoded.answer

    @staticmethod
    def _rejected(err: se.DeviceRefused) -> FiscalRejected:
        cls = next((d for p, d in _ERRORS.items() if isinstance(err, p)), FiscalRejected)
        return cls(err.message, device_code=err.code, command=err.command)

    # --- status ---------------------------------------------------------------------------

    def status(self) -> RegisterStatus:
        short = self._call(M.ShortStatus(password=self.password))
        fn = self._call(M.FnStatus(password=self.password))
        expiry = self._call(M.FnExpiry(password=self.password))
        shift = self._call(M.ShiftParameters(password=self.password))
        assert isinstance(short, M.ShortStatusAnswer) and isinstance(fn, M.FnStatusAnswer)
        assert isinstance(expiry, M.FnExpiryAnswer) and isinstance(shift, M.ShiftParametersAnswer)
        self._fn_number = fn.fn_number
        return RegisterStatus(
            mode=_MODES.get(short.mode, "other"),
            shift_open=bool(shift.shift_open),
            shift_number=shift.shift_number,
            shift_over_24h=short.mode == M.Mode.SHIFT_EXPIRED,
            receipt_open=short.mode == M.Mode.DOCUMENT_OPEN,
            paper_present=short.paper_present,
            cover_open=short.cover_open,
            fn_number=fn.fn_number,
            fn_expires=expiry.expires,
            fn_memory_almost_full=bool(fn.warnings & M.FnWarning.MEMORY_90),
            last_fd_number=fn.last_fd_number,
            receipts_in_shift=shift.receipt_number,
            device_time=fn.datetime,
        )

    # --- shift ----------------------------------------------------------------------------

    def _write_cashier(self, cashier: Cashier) -> None:
        self._call(M.WriteTlv(tlv_text(1021, cashier.name), password=self.password))
        if cashier.inn:
            self._call(M.WriteTlv(tlv_text(1203, cashier.inn), password=self.password))

    def open_shift(self, cashier: Cashier) -> FiscalDocument:
        self._write_cashier(cashier)
        self._call(M.OpenShift(password=self.password), PRINT_TIMEOUT)
        doc = self.last_document()
        assert doc is not None
        return doc

    def x_report(self) -> None:
        self._call(M.XReport(password=self.password), PRINT_TIMEOUT)

    def close_shift(self, cashier: Cashier) -> FiscalDocument:
        self._ensure_no_open_receipt()
        self._write_cashier(cashier)
        self._call(M.ZReport(password=self.password), PRINT_TIMEOUT)
        doc = self.last_document()
        assert doc is not None
        return doc

    # --- receipts ----------------------------------------------------------------------------

    def cancel_receipt(self) -> bool:
        """Cancel an open receipt; ``False`` if none was open."""
        try:
            self._call(M.CancelReceipt(password=self.password), PRINT_TIMEOUT)
        except FiscalRejected as exc:
            if exc.device_code == 0x55:
                return False
            raise
        return True

    def _ensure_no_open_receipt(self) -> None:
        short = self._call(M.ShortStatus(password=self.password))
        assert isinstance(short, M.ShortStatusAnswer)
        if short.mode == M.Mode.DOCUMENT_OPEN:
            self.cancel_receipt()

    def sell(self, receipt: Receipt) -> FiscalDocument:
        if receipt.sign not in (SettlementSign.INCOME, SettlementSign.EXPENSE):
            raise ReceiptRejected("sell() регистрирует приход или расход; для возврата — refund()")
        return self._register(receipt)

    def refund(self, receipt: Receipt) -> FiscalDocument:
        if receipt.sign not in (SettlementSign.INCOME_RETURN, SettlementSign.EXPENSE_RETURN):
            raise ReceiptRejected("refund() регистрирует возврат прихода или расхода")
        return self._register(receipt)

    def _validate(self, receipt: Receipt) -> dt.date:
        today = self._today()
        try:
            receipt.validate(today)
        except ReceiptInvalid as exc:
            raise ReceiptRejected(exc.message) from exc
        return today

    def _operations(self, receipt: Receipt) -> list[M.Request]:
        ops: list[M.Request] = []
        for item in receipt.items:
            if item.marking is not None:
                code = item.marking.code.encode("ascii")
                ops += [
                    M.CheckMarkingCode(int(item.marking.planned_status), code, password=self.password),
                    M.AcceptMarkingCode(1, password=self.password),
                    M.BindMarkingCode(code, password=self.password),
                ]
            ops.append(
                M.OperationV2(
                    operation=int(receipt.sign),
                    quantity=int(item.quantity * M.QUANTITY_SCALE),
                    price=kopecks(item.price),
                    amount=kopecks(item.amount),
                    tax_amount=MONEY_UNKNOWN,
                    tax_rate=TAX_BITS[item.vat],
                    department=item.department,
                    payment_method=int(item.payment_method),
                    item_type=int(item.item_type),
                    name=item.name,
                    password=self.password,
                )
            )
        return ops

    def _tax_slots(self, receipt: Receipt, on: dt.date) -> tuple[int, ...]:
        slots = [0] * M.TAX_SLOTS
        vat = receipt.vat_totals(on)
        for item in receipt.items:
            slot = TAX_SLOT.get(item.vat)
            if slot is None:
                continue
            if slot in (2, 3):
                slots[slot] += kopecks(item.amount)
        for kind, amount in vat.items():
            slot = TAX_SLOT.get(kind)
            if slot is not None and slot not in (2, 3):
                slots[slot] = kopecks(amount)
        return tuple(slots)

    def _tags(self, receipt: Receipt) -> list[M.Request]:
        out: list[M.Request] = []
        if receipt.cashier is not None:
            out.append(M.WriteTlv(tlv_text(1021, receipt.cashier.name), password=self.password))
            if receipt.cashier.inn:
                out.append(M.WriteTlv(tlv_text(1203, receipt.cashier.inn), password=self.password))
        if receipt.customer_contact:
            out.append(M.WriteTlv(tlv_text(1008, receipt.customer_contact), password=self.password))
        return out

    def _register(self, receipt: Receipt) -> FiscalDocument:
        today = self._validate(receipt)
        # Build every frame first: an unencodable name fails here, before the receipt opens.
        try:
            ops = self._operations(receipt)
            tags = self._tags(receipt)
            p = receipt.payments
            payments = [0] * M.PAYMENT_SLOTS
            payments[M.SLOT_CASH] = kopecks(p.cash)
            payments[M.SLOT_ELECTRONIC] = kopecks(p.electronic)
            payments[M.SLOT_PREPAID] = kopecks(p.prepayment)
            payments[M.SLOT_CREDIT] = kopecks(p.credit)
            payments[M.SLOT_COUNTER] = kopecks(p.counter)
            close = M.CloseReceiptV2(
                payments=tuple(payments), taxes=self._tax_slots(receipt, today),
                taxation=int(receipt.taxation), password=self.password,
            )  # fmt: skip
        except se.LocalProtocolError as exc:
            raise ReceiptRejected(f"Чек не может быть передан в ККТ: {exc}") from exc
        self._ensure_no_open_receipt()
        try:
            for n, op in enumerate(ops):
                answer = self._call(op, PRINT_TIMEOUT)
                if isinstance(answer, M.CheckMarkingCodeAnswer) and not answer.local_result & 0x02:
                    raise FiscalRejected(
                        f"Код маркировки не прошёл проверку (позиция {n + 1}, результат 2106 = {answer.check_result:02X}h)",
                        device_code=0,
                        command=0xFF61,
                    )
                if n == 0:
                    for tag in tags:
                        self._call(tag)
        except FiscalRejected:
            self._try_cancel()
            raise
        answer = self._call(close, PRINT_TIMEOUT)
        assert isinstance(answer, M.CloseReceiptV2Answer)
        return self._after_close(answer.fd_number, answer.fiscal_sign, answer.issued_at, receipt)

    def _try_cancel(self) -> None:
        try:
            self.cancel_receipt()
        except (FiscalRejected, DeviceTimeout):
            pass  # left open (e.g. no paper to print the cancellation): cancelled before the next document

    def _after_close(
        self, fd: int, sign: int, issued: dt.datetime | None, receipt: Receipt
    ) -> FiscalDocument:
        shift = self._call(M.ShiftParameters(password=self.password))
        assert isinstance(shift, M.ShiftParametersAnswer)
        if not self._fn_number:
            fn = self._call(M.FnStatus(password=self.password))
            assert isinstance(fn, M.FnStatusAnswer)
            self._fn_number = fn.fn_number
        return FiscalDocument(
            fd_number=fd, fiscal_sign=sign, issued_at=issued or dt.datetime.now().replace(second=0, microsecond=0),
            kind="receipt", sign=receipt.sign, total=receipt.total, shift_number=shift.shift_number,
            receipt_number=shift.receipt_number, fn_number=self._fn_number,
        )  # fmt: skip

    def correct(self, correction: Correction) -> FiscalDocument:
        today = self._today()
        try:
            correction.validate(today)
        except ReceiptInvalid as exc:
            raise ReceiptRejected(exc.message) from exc
        r = correction.receipt
        if r.sign not in (SettlementSign.INCOME, SettlementSign.EXPENSE):
            raise ReceiptRejected("Чек коррекции FF4A — только коррекция прихода или расхода")
        basis_date = dt.datetime.combine(correction.basis.date, dt.time(), dt.UTC)
        basis = tlv(1178, int(basis_date.timestamp()).to_bytes(4, "little"))
        basis += tlv_text(1179, correction.basis.order_number)
        p = r.payments
        try:
            request = M.CorrectionV2(
                correction_type=int(correction.correction_type), operation=int(r.sign), total=kopecks(r.total),
                cash=kopecks(p.cash - r.change), electronic=kopecks(p.electronic), prepayment=kopecks(p.prepayment),
                credit=kopecks(p.credit), counter=kopecks(p.counter), taxes=self._tax_slots(r, today),
                taxation=int(r.taxation), password=self.password,
            )  # fmt: skip
        except se.LocalProtocolError as exc:
            raise ReceiptRejected(f"Чек коррекции не может быть передан в ККТ: {exc}") from exc
        self._ensure_no_open_receipt()
        self._call(M.BeginCorrection(password=self.password), PRINT_TIMEOUT)
        try:
            self._call(M.WriteTlv(tlv(1174, basis), password=self.password))
            for tag in self._tags(r):
                self._call(tag)
        except FiscalRejected:
            self._try_cancel()
            raise
        answer = self._call(request, PRINT_TIMEOUT)
        assert isinstance(answer, M.CorrectionV2Answer)
        doc = self.document(answer.fd_number)
        assert doc is not None
        return doc

    # --- documents -------------------------------------------------------------------------------

    def last_document(self) -> FiscalDocument | None:
        fn = self._call(M.FnStatus(password=self.password))
        assert isinstance(fn, M.FnStatusAnswer)
        self._fn_number = fn.fn_number
        return self.document(fn.last_fd_number) if fn.last_fd_number else None

    def document(self, fd_number: int) -> FiscalDocument | None:
        try:
            found = self._call(M.FindDocument(fd_number, password=self.password))
        except FiscalStorageFault as exc:
            if exc.device_code == 0x08:
                return None
            raise
        assert isinstance(found, M.FindDocumentAnswer)
        sign = total = None
        if found.receipt_operation is not None and found.receipt_total is not None:
            sign, total = SettlementSign(found.receipt_operation), from_kopecks(found.receipt_total)
        shift = None
        if (
            found.document_type in (M.FnDocumentType.SHIFT_OPEN, M.FnDocumentType.SHIFT_CLOSE)
            and len(found.data) >= 2
        ):
            shift = int.from_bytes(found.data[:2], "little")
        return FiscalDocument(
            fd_number=found.fd_number, fiscal_sign=found.fiscal_sign, issued_at=found.issued_at,
            kind=_KINDS.get(found.document_type, "other"), sign=sign, total=total, shift_number=shift,
            fn_number=self._fn_number or None,
        )  # fmt: skip

    # --- marking -----------------------------------------------------------------------------------

    def check_marking_code(
        self, code: str, planned_status: MarkingStatus = MarkingStatus.PIECE_SOLD
    ) -> MarkingCheck:
        try:
            request = M.CheckMarkingCode(int(planned_status), code.encode("ascii"), password=self.password)
        except (UnicodeEncodeError, se.LocalProtocolError) as exc:
            raise ReceiptRejected(f"Код маркировки не может быть передан в ККТ: {exc}") from exc
        answer = self._call(request)
        assert isinstance(answer, M.CheckMarkingCodeAnswer)
        self._call(M.AcceptMarkingCode(2, password=self.password))  # a check only: clear the FN buffer
        return MarkingCheck(
            code=code,
            valid=bool(answer.local_result & 0x02)
            and not (answer.online_code == 0 and not answer.check_result & 0x02),
            checked_online=answer.online_code == 0,
            check_result=answer.check_result,
            code_type=answer.code_type,
        )
