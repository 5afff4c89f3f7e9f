"""A Shtrih-M fiscal register with an FN, played over the protocol package's ``DeviceLink``.

The model: modes (shift closed / open / open over 24 h / document open), an FN that numbers
and signs documents and persists them (``state.StateFile``), fills up (``capacity``) and
expires, a printer with paper and a cover, power loss (the open receipt is gone on power-up,
as on a real register), marking-code check answers per code, and a tape file of readable
Russian text. Fault hooks are plain methods: ``paper_out()``, ``paper_in()``, ``open_cover()``,
``close_cover()``, ``power_loss()``; ``marking`` maps a code to ``valid`` / ``invalid`` /
``no_connection``.

It never imports a driver: it decodes requests with ``protocols.shtrih.messages`` and keeps
its own tax table, so a driver bug cannot hide behind shared code.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from protocols.shtrih import messages as M
from protocols.shtrih.errors import MalformedMessage, RemoteProtocolError
from protocols.shtrih.fields import MONEY_UNKNOWN
from protocols.shtrih.machine import CommandReceived, DeviceLink
from simulators.fiscal.state import FnState, StateFile, StoredDocument

log = logging.getLogger(__name__)

# The simulator's own reading of the FF46 tax bitmask: bit → (label, percent or None).
_TAX_BITS: dict[int, tuple[str, Decimal | None]] = {
    0x01: ("НДС 22%", Decimal(22)),
    0x02: ("НДС 10%", Decimal(10)),
    0x04: ("НДС 0%", Decimal(0)),
    0x08: ("БЕЗ НДС", None),
    0x10: ("НДС 22/122", Decimal(22)),
    0x20: ("НДС 10/110", Decimal(10)),
    0x81: ("НДС 5%", Decimal(5)),
    0x82: ("НДС 7%", Decimal(7)),
    0x84: ("НДС 5/105", Decimal(5)),
    0x88: ("НДС 7/107", Decimal(7)),
}
_OPERATION_TITLES = {1: "КАССОВЫЙ ЧЕК / ПРИХОД", 2: "КАССОВЫЙ ЧЕК / ВОЗВРАТ ПРИХОДА",
                     3: "КАССОВЫЙ ЧЕК / РАСХОД", 4: "КАССОВЫЙ ЧЕК / ВОЗВРАТ РАСХОДА"}  # fmt: skip
_LEGACY_TYPES = {0: 1, 1: 3, 2: 2, 3: 4}  # 8D receipt type → 1054
_RECEIPT_STATUS = {v: k for k, v in _LEGACY_TYPES.items()}  # 1054 → mode 8 status nibble
DOC_SHIFT_OPEN, DOC_RECEIPT, DOC_SHIFT_CLOSE, DOC_CORRECTION = 2, 3, 5, 31


@dataclass
class _Line:
    name: str
    quantity: int  # ×10⁶
    price: int
    amount: int
    tax: int
    method: int
    item_type: int
    marking: bytes | None = None


@dataclass
class _OpenReceipt:
    operation: int
    lines: list[_Line] = field(default_factory=list)
    tlv: list[bytes] = field(default_factory=list)
    correction: bool = False


class _Refuse(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


@dataclass
class SimConfig:
    """How the simulated register is set up."""

    state_file: str | Path | None = None
    tape_file: str | Path | None = None
    passwords: frozenset[int] = frozenset({1, 2, 3, 29, 30})
    clock: Callable[[], dt.datetime] = dt.datetime.now
    serial_number: int = 12345678
    inn: int = 7701234567
    model_name: str = "ШТРИХ-М-01Ф"
    """FCh name; hosts pick the model by it (pyshtrih ``discovery``: "М-01Ф" → ShtrihM01F)."""
    model_id: int = 0
    """FCh model byte [K: the vendor number of the M-01Ф was not found; 0 is ШТРИХ-ФР-Ф]."""


class ShtrihDevice:
    """``ByteDevice`` for ``simulators.link`` endpoints."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self._store = StateFile(self.config.state_file)
        self.fn: FnState = self._store.load()
        self.link = DeviceLink()
        self.receipt: _OpenReceipt | None = None
        self.paper = True
        self.cover_open = False
        self.marking: dict[bytes, str] = {}
        self._checked: dict[bytes, str] = {}
        self._accepted: set[bytes] = set()
        self._bind: bytes | None = None
        self.tape: list[str] = []
        self.lock = threading.RLock()
        self.commands: list[int] = []
        self._pending_tlv: list[bytes] = []

    # --- fault hooks ---------------------------------------------------------------------

    def paper_out(self) -> None:
        self.paper = False

    def paper_in(self) -> None:
        self.paper = True

    def open_cover(self) -> None:
        self.cover_open = True

    def close_cover(self) -> None:
        self.cover_open = False

    def power_loss(self) -> None:
        """Power off and on: RAM (open receipt, link buffers) is lost, the FN file is reread."""
        with self.lock:
            if self.receipt is not None:
                self._print(["*** ЧЕК АННУЛИРОВАН (сбой питания) ***", ""])
            self.receipt = None
            self._bind = None
            self._accepted.clear()
            self.link.forget()
            self.fn = self._store.load()

    # --- ByteDevice ------------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> bytes:
        with self.lock:
            self.link.receive_data(data)
            while isinstance(ev := self.link.next_event(), CommandReceived):
                self.link.send_answer(self.execute(ev.body))
            return self.link.data_to_send()

    def execute(self, body: bytes) -> bytes:
        """One command frame body → the answer body."""
        try:
            request = M.decode_request(body)
        except MalformedMessage as exc:
            code, _ = M.split_command(body) if body else (0, b"")
            known = code in M.REQUESTS
            log.info("sim: bad request %s: %s", body.hex(" "), exc)
            return M.Refused(code or 0x10, 0x33 if known else 0x37).encode()
        except RemoteProtocolError:
            return M.Refused(0x10, 0x37).encode()
        self.commands.append(request.CODE)
        try:
            if request.HAS_PASSWORD and request.password not in self.config.passwords:
                raise _Refuse(0x4F)
            handler = getattr(self, f"_do_{request.CODE:x}")
            answer: M.Answer = handler(request)
        except _Refuse as refusal:
            return M.Refused(request.CODE, refusal.code).encode()
        return M.encode_answer(request.CODE, answer)

    # --- helpers ----------------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        return self.config.clock().replace(second=0, microsecond=0)

    def _over_24h(self) -> bool:
        if not self.fn.shift_open or self.fn.shift_opened_at is None:
            return False
        return self.config.clock() - dt.datetime.fromisoformat(self.fn.shift_opened_at) > dt.timedelta(
            hours=24
        )

    def mode(self) -> int:
        """The mode (low nibble of the mode byte)."""
        if self.receipt is not None:
            return M.Mode.DOCUMENT_OPEN
        if not self.fn.shift_open:
            return M.Mode.SHIFT_CLOSED
        return M.Mode.SHIFT_EXPIRED if self._over_24h() else M.Mode.SHIFT_OPEN

    def _mode_byte(self) -> int:
        """Mode 8 carries the document in the high nibble: 8.0 sale, 8.1 buy, 8.2 sale
        return, 8.3 buy return (javapos PrinterConst ECRMODE_RECSELL 08h, ECRMODE_RECBUY 18h; pyshtrih FRMode)."""
        if self.receipt is not None:
            return M.Mode.DOCUMENT_OPEN | _RECEIPT_STATUS.get(self.receipt.operation, 0) << 4
        return self.mode()

    def _need_printer(self) -> None:
        if self.cover_open or not self.paper:
            raise _Refuse(0x6B)

    def _need_fn(self) -> None:
        if self._now().date() > dt.date.fromisoformat(self.fn.expires):
            raise _Refuse(0x05)
        if self.fn.last_fd >= self.fn.capacity:
            raise _Refuse(0x14)

    def _need_shift(self) -> None:
        if not self.fn.shift_open:
            raise _Refuse(0x3D)
        if self._over_24h():
            raise _Refuse(0x4E)

    def _print(self, lines: list[str]) -> None:
        self.tape.extend(lines)
        if self.config.tape_file:
            with open(self.config.tape_file, "a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")

    def _document(self, doc_type: int, operation: int = 0, total: int = 0) -> StoredDocument:
        self._need_fn()
        now = self._now()
        fd = self.fn.last_fd + 1
        doc = StoredDocument(
            fd_number=fd,
            doc_type=doc_type,
            issued_at=now.isoformat(),
            fiscal_sign=self.fn.sign(fd, doc_type, now, operation, total),
            operation=operation,
            total=total,
            shift_number=self.fn.shift_number,
            receipt_number=self.fn.receipt_number,
        )
        self.fn.last_fd = fd
        self.fn.document_number += 1
        self.fn.documents.append(doc)
        return doc

    def _footer(self, doc: StoredDocument) -> list[str]:
        return [
            f"СМЕНА {doc.shift_number}   ЧЕК {doc.receipt_number}",
            f"ФН {self.fn.fn_number}",
            f"ФД {doc.fd_number}   ФП {doc.fiscal_sign:010d}",
            dt.datetime.fromisoformat(doc.issued_at).strftime("%d.%m.%Y %H:%M"),
            "-" * 40,
            "",
        ]

    @staticmethod
    def _rub(kop: int) -> str:
        return f"{kop // 100}.{kop % 100:02d}"

    # --- status ------------------------------------------------------------------------------

    def _flags(self) -> int:
        flags = M.Flag.JOURNAL_ROLL
        if self.paper:
            flags |= M.Flag.RECEIPT_ROLL | M.Flag.RECEIPT_OPTICAL
        if self.cover_open:
            flags |= M.Flag.COVER_OPEN
        return flags

    def _do_10(self, _: M.ShortStatus) -> M.Answer:
        ops = len(self.receipt.lines) if self.receipt else 0
        return M.ShortStatusAnswer(
            operator=30, flags=self._flags(), mode_byte=self._mode_byte(),
            submode=M.SubMode.IDLE if self.paper else M.SubMode.PAPER_OUT_PASSIVE,
            ops_low=ops & 0xFF, ops_high=ops >> 8, battery_voltage=0x9C, power_voltage=0xC8,
        )  # fmt: skip

    def _do_11(self, _: M.FullStatus) -> M.Answer:
        now = self.config.clock()
        return M.FullStatusAnswer(
            operator=30, fw_version=0x3143, fw_build=62922, fw_date=dt.date(2024, 5, 1), hall_number=1,
            document_number=self.fn.document_number & 0xFFFF, flags=self._flags(), mode_byte=self._mode_byte(),
            submode=0 if self.paper else 1, port=0, fp_version=0x3143, fp_build=62922,
            fp_date=dt.date(2024, 5, 1), date=now.date(), time=now.time().replace(microsecond=0), fp_flags=0,
            serial_number=self.config.serial_number, last_shift=self.fn.shift_number - int(self.fn.shift_open),
            free_fp_records=max(0, self.fn.capacity - self.fn.last_fd) & 0xFFFF, registrations=1,
            registrations_left=11, inn=self.config.inn,
        )  # fmt: skip

    def _do_fc(self, _: M.GetDeviceType) -> M.Answer:
        return M.DeviceTypeAnswer(
            M.DeviceKind.FISCAL_REGISTER, 0, 1, 0, self.config.model_id, 0, self.config.model_name
        )

    def _do_ff01(self, _: M.FnStatus) -> M.Answer:
        warnings = M.FnWarning.MEMORY_90 if self.fn.last_fd * 10 >= self.fn.capacity * 9 else 0
        current = M.FnDocument.NONE
        if self.receipt is not None:
            current = M.FnDocument.RECEIPT
        return M.FnStatusAnswer(
            life_phase=0x03, current_document=current, document_data=int(bool(self.receipt and self.receipt.lines)),
            shift_open=int(self.fn.shift_open), warnings=warnings, datetime=self._now(),
            fn_number=self.fn.fn_number, last_fd_number=self.fn.last_fd,
        )  # fmt: skip

    def _do_ff03(self, _: M.FnExpiry) -> M.Answer:
        return M.FnExpiryAnswer(dt.date.fromisoformat(self.fn.expires), 11, 1)

    def _do_ff40(self, _: M.ShiftParameters) -> M.Answer:
        return M.ShiftParametersAnswer(int(self.fn.shift_open), self.fn.shift_number, self.fn.receipt_number)

    def _do_ff0a(self, req: M.FindDocument) -> M.Answer:
        doc = self.fn.find(req.fd_number)
        if doc is None:
            raise _Refuse(0x08)
        data = b""
        if doc.doc_type in (DOC_RECEIPT, DOC_CORRECTION):
            data = bytes([doc.operation]) + doc.total.to_bytes(5, "little")
        elif doc.doc_type in (DOC_SHIFT_OPEN, DOC_SHIFT_CLOSE):
            data = doc.shift_number.to_bytes(2, "little")
        return M.FindDocumentAnswer(
            document_type=doc.doc_type, ofd_ticket=0, issued_at=dt.datetime.fromisoformat(doc.issued_at),
            fd_number=doc.fd_number, fiscal_sign=doc.fiscal_sign, data=data,
        )  # fmt: skip

    # --- shift -----------------------------------------------------------------------------

    def _do_e0(self, _: M.OpenShift) -> M.Answer:
        if self.fn.shift_open:
            raise _Refuse(0x3C)
        self._need_printer()
        self.fn.shift_open = True
        self.fn.shift_number += 1
        self.fn.receipt_number = 0
        self.fn.sales_total = self.fn.returns_total = 0
        self.fn.shift_opened_at = self.config.clock().isoformat()
        doc = self._document(DOC_SHIFT_OPEN)
        self._store.save(self.fn)
        self._print(["ОТЧЁТ ОБ ОТКРЫТИИ СМЕНЫ", *self._tlv_lines(), *self._footer(doc)])
        self._pending_tlv.clear()
        return M.OperatorAnswer(30)

    def _do_40(self, _: M.XReport) -> M.Answer:
        if not self.fn.shift_open:
            raise _Refuse(0x3D)
        if self.receipt is not None:
            raise _Refuse(0x4A)
        self._need_printer()
        self._print([
            "СУТОЧНЫЙ ОТЧЁТ БЕЗ ГАШЕНИЯ (X-ОТЧЁТ)", f"СМЕНА {self.fn.shift_number}",
            f"ЧЕКОВ ЗА СМЕНУ {self.fn.receipt_number}", f"ПРИХОД {self._rub(self.fn.sales_total)}",
            f"ВОЗВРАТ ПРИХОДА {self._rub(self.fn.returns_total)}",
            f"НАЛИЧНЫХ В КАССЕ {self._rub(self.fn.sales_total - self.fn.returns_total)}", "-" * 40, "",
        ])  # fmt: skip
        return M.OperatorAnswer(30)

    def _do_41(self, _: M.ZReport) -> M.Answer:
        if not self.fn.shift_open:
            raise _Refuse(0x3D)
        if self.receipt is not None:
            raise _Refuse(0x4A)
        self._need_printer()
        doc = self._document(DOC_SHIFT_CLOSE)
        self.fn.shift_open = False
        self.fn.shift_opened_at = None
        self._store.save(self.fn)
        self._print([
            "ОТЧЁТ О ЗАКРЫТИИ СМЕНЫ", *self._tlv_lines(), f"ЧЕКОВ ЗА СМЕНУ {self.fn.receipt_number}",
            f"ПРИХОД {self._rub(self.fn.sales_total)}", f"ВОЗВРАТ ПРИХОДА {self._rub(self.fn.returns_total)}",
            *self._footer(doc),
        ])  # fmt: skip
        self._pending_tlv.clear()
        return M.OperatorAnswer(30)

    def _do_b0(self, _: M.ContinuePrint) -> M.Answer:
        self._need_printer()
        return M.OperatorAnswer(30)

    # --- receipts --------------------------------------------------------------------------------

    def _open(self, operation: int, *, correction: bool = False) -> _OpenReceipt:
        self._need_shift()
        self._need_fn()
        self.receipt = _OpenReceipt(operation, tlv=list(self._pending_tlv), correction=correction)
        self._pending_tlv = []
        return self.receipt

    def _do_8d(self, req: M.OpenReceipt) -> M.Answer:
        if self.receipt is not None:
            raise _Refuse(0x4A)
        self._need_printer()
        self._open(_LEGACY_TYPES[req.receipt_type])
        return M.OperatorAnswer(30)

    def _add_line(self, operation: int, line: _Line) -> None:
        self._need_shift()
        self._need_printer()
        receipt = self.receipt or self._open(operation)
        if receipt.operation != operation or receipt.correction:
            raise _Refuse(0x49)
        if len(receipt.lines) >= 100:
            raise _Refuse(0x94)
        receipt.lines.append(line)

    def _do_80(self, req: M.Sale) -> M.Answer:
        amount = int((Decimal(req.quantity) * req.price / 1000).quantize(Decimal(1), ROUND_HALF_UP))
        tax = {1: 0x01, 2: 0x02, 3: 0x04, 4: 0x08}.get(req.tax1, 0x08)
        self._add_line(2 if req.CODE == 0x82 else 1,
                       _Line(req.text or "ТОВАР", req.quantity * 1000, req.price, amount, tax, 4, 1))  # fmt: skip
        return M.OperatorAnswer(30)

    _do_82 = _do_80

    def _do_ff46(self, req: M.OperationV2) -> M.Answer:
        if req.tax_rate not in _TAX_BITS:
            raise _Refuse(0x33)
        computed = int(
            (Decimal(req.quantity) * req.price / M.QUANTITY_SCALE).quantize(Decimal(1), ROUND_HALF_UP)
        )
        amount = computed if req.amount == MONEY_UNKNOWN else req.amount
        if abs(amount - computed) > 1:
            raise _Refuse(0x33)
        marking = self._bind
        if req.item_type in (31, 33) and marking is None:
            raise _Refuse(0x33)
        self._add_line(req.operation, _Line(req.name, req.quantity, req.price, amount, req.tax_rate,
                                            req.payment_method, req.item_type, marking))  # fmt: skip
        self._bind = None
        return M.EmptyAnswer()

    def _do_ff0c(self, req: M.WriteTlv) -> M.Answer:
        if len(req.tlv) < 4 or int.from_bytes(req.tlv[2:4], "little") != len(req.tlv) - 4:
            raise _Refuse(0x33)
        (self.receipt.tlv if self.receipt is not None else self._pending_tlv).append(req.tlv)
        return M.EmptyAnswer()

    def _do_88(self, _: M.CancelReceipt) -> M.Answer:
        if self.receipt is None:
            raise _Refuse(0x55)
        self._need_printer()
        self.receipt = None
        self._bind = None
        self._print(["*** ЧЕК АННУЛИРОВАН ***", "-" * 40, ""])
        return M.OperatorAnswer(30)

    def _close(self, payments: tuple[int, ...], text: str = "") -> tuple[StoredDocument, int]:
        receipt = self.receipt
        if receipt is None:
            raise _Refuse(0x55)
        self._need_printer()
        total = sum(line.amount for line in receipt.lines)
        if total == 0:
            raise _Refuse(0x8E)
        paid = sum(payments)
        non_cash = paid - payments[0]
        if paid < total:
            raise _Refuse(0x45)
        if non_cash > total:
            raise _Refuse(0x4D)
        change = paid - total
        self.fn.receipt_number += 1
        doc = self._document(DOC_CORRECTION if receipt.correction else DOC_RECEIPT, receipt.operation, total)
        if receipt.operation in (1, 4):
            self.fn.sales_total += total
        else:
            self.fn.returns_total += total
        self.receipt = None
        self._store.save(self.fn)
        self._print_receipt(receipt, doc, payments, change, text)
        return doc, change

    def _do_85(self, req: M.CloseReceipt) -> M.Answer:
        _, change = self._close((req.cash, req.pay2, req.pay3, req.pay4), req.text)
        return M.CloseReceiptAnswer(30, change)

    def _do_ff45(self, req: M.CloseReceiptV2) -> M.Answer:
        doc, change = self._close(req.payments, req.text)
        return M.CloseReceiptV2Answer(
            change, doc.fd_number, doc.fiscal_sign, dt.datetime.fromisoformat(doc.issued_at)
        )

    def _do_ff35(self, _: M.BeginCorrection) -> M.Answer:
        if self.receipt is not None:
            raise _Refuse(0x4A)
        self._need_printer()
        self._open(1, correction=True)
        return M.EmptyAnswer()

    def _do_ff4a(self, req: M.CorrectionV2) -> M.Answer:
        if self.receipt is None or not self.receipt.correction:
            if self.receipt is not None:
                raise _Refuse(0x4A)
            self._open(req.operation, correction=True)
        assert self.receipt is not None
        self.receipt.operation = req.operation
        if not self.receipt.lines:
            self.receipt.lines.append(_Line("КОРРЕКЦИЯ", M.QUANTITY_SCALE, req.total, req.total, 0x08, 4, 10))
        payments = (req.cash, req.electronic, *(0,) * 11, req.prepayment, req.credit, req.counter)
        if sum(payments) != req.total:
            raise _Refuse(0x45)
        doc, _ = self._close(payments)
        return M.CorrectionV2Answer(doc.receipt_number, doc.fd_number, doc.fiscal_sign)

    # --- marking ---------------------------------------------------------------------------------

    def _do_ff61(self, req: M.CheckMarkingCode) -> M.Answer:
        verdict = self.marking.get(req.code, "valid")
        self._checked[req.code] = verdict
        if verdict == "invalid":
            return M.CheckMarkingCodeAnswer(
                0x01, 0, 5, 2, 0, M.CheckResult.CODE_CHECKED | M.CheckResult.STATUS_CHECKED
            )
        if verdict == "no_connection":
            result = M.CheckResult.CODE_CHECKED | M.CheckResult.CODE_VALID | M.CheckResult.OFFLINE
            return M.CheckMarkingCodeAnswer(0x03, 0, 5, 2, M.ONLINE_NO_CONNECTION, result)
        return M.CheckMarkingCodeAnswer(0x03, 0, 5, 2, 0, M.CheckResult.ALL_GOOD_ONLINE)

    def _do_ff69(self, req: M.AcceptMarkingCode) -> M.Answer:
        if req.decision == 2:
            self._checked.clear()
            return M.EmptyAnswer()
        if not self._checked:
            raise _Refuse(0x02)
        code = next(reversed(self._checked))
        if req.decision == 1:
            self._accepted.add(code)
        self._checked.pop(code)
        return M.EmptyAnswer()

    def _do_ff67(self, req: M.BindMarkingCode) -> M.Answer:
        if req.code not in self._accepted:
            raise _Refuse(0x02)
        self._accepted.discard(req.code)
        self._bind = req.code
        return M.BindMarkingCodeAnswer(0x4D44, 0)

    # --- tape ----------------------------------------------------------------------------------

    def _tlv_lines(self) -> list[str]:
        lines = []
        for tlv in self._pending_tlv + (self.receipt.tlv if self.receipt else []):
            lines.extend(_describe_tlv(tlv))
        return lines

    def _print_receipt(
        self, r: _OpenReceipt, doc: StoredDocument, pay: tuple[int, ...], change: int, text: str
    ) -> None:
        title = "КАССОВЫЙ ЧЕК КОРРЕКЦИИ" if r.correction else _OPERATION_TITLES.get(r.operation, "ЧЕК")
        lines = [title]
        for tlv in r.tlv:
            lines.extend(_describe_tlv(tlv))
        vat: dict[int, int] = {}
        for line in r.lines:
            label, pct = _TAX_BITS.get(line.tax, ("?", None))
            qty = Decimal(line.quantity) / M.QUANTITY_SCALE
            lines.append(line.name[:40])
            lines.append(
                f"  {qty.normalize():f} x {self._rub(line.price)} = {self._rub(line.amount)}  {label}"
            )
            if line.marking:
                lines.append("  [М] товар маркирован")
            if pct:
                vat[line.tax] = vat.get(line.tax, 0) + int(
                    (Decimal(line.amount) * pct / (100 + pct)).quantize(Decimal(1), ROUND_HALF_UP)
                )
        total = sum(line.amount for line in r.lines)
        lines.append(f"ИТОГ {self._rub(total)}")
        names = {
            0: "НАЛИЧНЫМИ",
            1: "БЕЗНАЛИЧНЫМИ",
            13: "ЗАЧЁТ ПРЕДОПЛАТЫ",
            14: "ПОСТОПЛАТА",
            15: "ВСТРЕЧНОЕ ПРЕДОСТАВЛЕНИЕ",
        }
        for slot, amount in enumerate(pay):
            if amount:
                lines.append(f"{names.get(slot, 'БЕЗНАЛИЧНЫМИ')} {self._rub(amount)}")
        if change:
            lines.append(f"СДАЧА {self._rub(change)}")
        for bit, amount in vat.items():
            lines.append(f"СУММА {_TAX_BITS[bit][0]} {self._rub(amount)}")
        if text:
            lines.append(text)
        self._print([*lines, *self._footer(doc)])


def _describe_tlv(tlv: bytes) -> list[str]:
    tag = int.from_bytes(tlv[:2], "little")
    value = tlv[4:]
    names = {1008: "ПОКУПАТЕЛЬ", 1021: "КАССИР", 1203: "ИНН КАССИРА"}
    if tag in names:
        return [f"{names[tag]}: {value.decode('cp866', errors='replace')}"]
    if tag == 1174:
        return ["ОСНОВАНИЕ ДЛЯ КОРРЕКЦИИ"]
    return []
