"""An ATOL register behind the ATOL driver: JSON tasks in, task results out.

The FN is the one the Shtrih simulator uses (``simulators.fiscal.state``): documents numbered
and signed deterministically, persisted atomically to JSON, so a restarted simulator keeps its
fiscal memory. The model adds ATOL's rules: one shift at a time (83 if open, 73 if closed, 68
after 24 h), a printer with paper and a cover (44/45), receipt arithmetic checked to the kopeck
(16, 17, 52, 66), marked positions only after ``beginMarkingCodeValidation`` →
``acceptMarkingCode`` of the same code (13 otherwise), and a readable Russian tape.

Fault hooks: ``paper_out()``/``paper_in()``, ``open_cover()``/``close_cover()``, the clock in
``AtolSimConfig`` (shift over 24 h), ``marking[code] = "valid" | "invalid" | "no_connection"``.
The web-server side (queue, uuids, slow device, malformed answers) is ``server.AtolWebServer``.

It never imports a driver: tasks are parsed with ``protocols.atol.tasks`` and the sums are
recomputed here from the task's own numbers.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from protocols.atol import tasks as T
from protocols.atol.codes import ErrorCode, text
from protocols.atol.results import Status
from simulators.fiscal.state import FnState, StateFile, StoredDocument

DOC_SHIFT_OPEN, DOC_RECEIPT, DOC_SHIFT_CLOSE, DOC_CORRECTION = 2, 3, 5, 31
_DOC_NAMES = {DOC_SHIFT_OPEN: "openShift", DOC_SHIFT_CLOSE: "closeShift", DOC_RECEIPT: "receipt",
              DOC_CORRECTION: "receiptCorrection"}  # fmt: skip
_OPERATION = {"sell": 1, "sellReturn": 2, "buy": 3, "buyReturn": 4, "sellCorrection": 1,
              "sellReturnCorrection": 2, "buyCorrection": 3, "buyReturnCorrection": 4}  # fmt: skip
_TITLES = {1: "КАССОВЫЙ ЧЕК / ПРИХОД", 2: "КАССОВЫЙ ЧЕК / ВОЗВРАТ ПРИХОДА", 3: "КАССОВЫЙ ЧЕК / РАСХОД",
           4: "КАССОВЫЙ ЧЕК / ВОЗВРАТ РАСХОДА"}  # fmt: skip
_PAY_TITLES = {T.PaymentType.CASH: "НАЛИЧНЫМИ", T.PaymentType.ELECTRONICALLY: "БЕЗНАЛИЧНЫМИ",
               T.PaymentType.PREPAID: "ЗАЧЁТ ПРЕДОПЛАТЫ", T.PaymentType.CREDIT: "ПОСТОПЛАТА",
               T.PaymentType.OTHER: "ВСТРЕЧНОЕ ПРЕДОСТАВЛЕНИЕ"}  # fmt: skip
_MARKED = {T.PaymentObject.COMMODITY_WITH_MARKING, T.PaymentObject.EXCISE_WITH_MARKING}
_KOP = Decimal("0.01")
MARKING_CHECK_BUSY = 401  # [K] "процедура проверки КМ уже запущена" (seen in public driver code)
_ALL_GOOD, _INVALID, _OFFLINE = 0x0F, 0x05, 0x13  # tag 2106 bits


class _Refuse(Exception):
    def __init__(self, code: int, detail: str = "") -> None:
        self.code = code
        self.detail = detail

    def description(self) -> str:
        if self.code == MARKING_CHECK_BUSY:
            return "Процедура проверки КМ уже запущена"
        return text(ErrorCode(self.code), self.detail)


@dataclass
class AtolSimConfig:
    """How the simulated register is set up."""

    state_file: str | Path | None = None
    tape_file: str | Path | None = None
    clock: Callable[[], dt.datetime] = dt.datetime.now  # the register's local time, naive
    utc_offset: dt.timedelta = dt.timedelta(hours=3)
    registration_number: str = "0000000001002292"
    fns_url: str = "www.nalog.gov.ru"
    marking: dict[str, str] = field(default_factory=dict)


class AtolDevice:
    """Executes one decoded task at a time; thread-safe through ``lock``."""

    def __init__(self, config: AtolSimConfig | None = None) -> None:
        self.config = config or AtolSimConfig()
        self._store = StateFile(self.config.state_file)
        self.fn: FnState = self._store.load()
        self.paper = True
        self.cover_open = False
        self.marking = self.config.marking
        self.tape: list[str] = []
        self.executed: list[str] = []
        self.lock = threading.RLock()
        self._checking: str | None = None
        self._accepted: list[str] = []

    # --- fault hooks -------------------------------------------------------------------------

    def paper_out(self) -> None:
        self.paper = False

    def paper_in(self) -> None:
        self.paper = True

    def open_cover(self) -> None:
        self.cover_open = True

    def close_cover(self) -> None:
        self.cover_open = False

    # --- tasks -------------------------------------------------------------------------------

    def run(self, raw_tasks: list[Any]) -> list[dict[str, Any]]:
        """A request's tasks in order; after an error the rest are ``interrupted``."""
        out: list[dict[str, Any]] = []
        failed = False
        for raw in raw_tasks:
            if failed:
                out.append(_result(Status.INTERRUPTED, ErrorCode.INTERRUPTED, text(ErrorCode.INTERRUPTED)))
                continue
            res = self.execute(raw)
            failed = res["status"] == Status.ERROR
            out.append(res)
        return out

    def execute(self, raw: Any) -> dict[str, Any]:
        with self.lock:
            try:
                task = T.parse_task(raw)
            except T.TaskInvalid as exc:
                code = {"unknown_type": ErrorCode.NOT_SUPPORTED, "missing": ErrorCode.NO_REQUIRED_PARAM}.get(
                    exc.reason, ErrorCode.INVALID_PARAM
                )
                return _result(Status.ERROR, code, text(code, exc.message))
            self.executed.append(task.type)
            try:
                handler = getattr(self, "_do_" + task.type)
                payload: dict[str, Any] | None = handler(task)
            except _Refuse as refusal:
                return _result(Status.ERROR, refusal.code, refusal.description())
            return _result(Status.READY, ErrorCode.OK, text(ErrorCode.OK), payload)

    # --- helpers -----------------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        return self.config.clock().replace(microsecond=0)

    def _aware(self, moment: dt.datetime) -> str:
        return moment.replace(tzinfo=dt.timezone(self.config.utc_offset)).isoformat()

    def _over_24h(self) -> bool:
        if not self.fn.shift_open or self.fn.shift_opened_at is None:
            return False
        opened = dt.datetime.fromisoformat(self.fn.shift_opened_at)
        return self.config.clock() - opened > dt.timedelta(hours=24)

    def _need_printer(self) -> None:
        if self.cover_open:
            raise _Refuse(ErrorCode.COVER_OPENED)
        if not self.paper:
            raise _Refuse(ErrorCode.NO_PAPER)

    def _need_fn(self) -> None:
        if self._now().date() > dt.date.fromisoformat(self.fn.expires):
            raise _Refuse(ErrorCode.FN_EXPIRED)
        if self.fn.last_fd >= self.fn.capacity:
            raise _Refuse(ErrorCode.FN_OVERFLOW)

    def _need_shift(self) -> None:
        if not self.fn.shift_open:
            raise _Refuse(ErrorCode.DENIED_IN_CLOSED_SHIFT)
        if self._over_24h():
            raise _Refuse(ErrorCode.SHIFT_EXPIRED)

    def _print(self, lines: list[str]) -> None:
        self.tape.extend(lines)
        if self.config.tape_file:
            with open(self.config.tape_file, "a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")

    def _document(self, doc_type: int, operation: int = 0, total: int = 0) -> StoredDocument:
        now = self._now()
        fd = self.fn.last_fd + 1
        doc = StoredDocument(
            fd_number=fd, doc_type=doc_type, issued_at=now.isoformat(),
            fiscal_sign=self.fn.sign(fd, doc_type, now, operation, total), operation=operation, total=total,
            shift_number=self.fn.shift_number, receipt_number=self.fn.receipt_number,
        )  # fmt: skip
        self.fn.last_fd = fd
        self.fn.document_number += 1
        self.fn.documents.append(doc)
        return doc

    def fiscal_params(self, doc: StoredDocument) -> dict[str, Any]:
        params: dict[str, Any] = {
            "fiscalDocumentDateTime": self._aware(dt.datetime.fromisoformat(doc.issued_at)),
            "fiscalDocumentNumber": doc.fd_number,
            "fiscalDocumentSign": f"{doc.fiscal_sign:010d}",
            "fnNumber": self.fn.fn_number,
            "registrationNumber": self.config.registration_number,
            "shiftNumber": doc.shift_number,
            "fnsUrl": self.config.fns_url,
        }
        if doc.doc_type in (DOC_RECEIPT, DOC_CORRECTION):
            params["fiscalReceiptNumber"] = doc.receipt_number
            params["total"] = (Decimal(doc.total) / 100).quantize(_KOP)
        if doc.doc_type == DOC_SHIFT_CLOSE:
            params["receiptsCount"] = doc.receipt_number
        return {"fiscalParams": params, "warnings": None}

    def _footer(self, doc: StoredDocument, operator: T.Operator | None) -> list[str]:
        who = [f"КАССИР: {operator.name}"] if operator else []
        if operator and operator.vatin:
            who.append(f"ИНН КАССИРА: {operator.vatin}")
        return [
            *who, f"СМЕНА {doc.shift_number}   ЧЕК {doc.receipt_number}", f"ФН {self.fn.fn_number}",
            f"ФД {doc.fd_number}   ФП {doc.fiscal_sign:010d}",
            dt.datetime.fromisoformat(doc.issued_at).strftime("%d.%m.%Y %H:%M"), "-" * 40, "",
        ]  # fmt: skip

    # --- shift -------------------------------------------------------------------------------

    def _do_openShift(self, task: T.OpenShiftTask) -> dict[str, Any]:
        if self.fn.shift_open:
            raise _Refuse(ErrorCode.DENIED_IN_OPENED_SHIFT)
        self._need_printer()
        self._need_fn()
        self.fn.shift_open = True
        self.fn.shift_number += 1
        self.fn.receipt_number = 0
        self.fn.sales_total = self.fn.returns_total = 0
        self.fn.shift_opened_at = self.config.clock().isoformat()
        doc = self._document(DOC_SHIFT_OPEN)
        self._store.save(self.fn)
        self._print(["ОТЧЁТ ОБ ОТКРЫТИИ СМЕНЫ", *self._footer(doc, task.operator)])
        return self.fiscal_params(doc)

    def _do_closeShift(self, task: T.CloseShiftTask) -> dict[str, Any]:
        if not self.fn.shift_open:
            raise _Refuse(ErrorCode.DENIED_IN_CLOSED_SHIFT)
        self._need_printer()
        self._need_fn()
        doc = self._document(DOC_SHIFT_CLOSE)
        self.fn.shift_open = False
        self.fn.shift_opened_at = None
        self._store.save(self.fn)
        self._print([
            "ОТЧЁТ О ЗАКРЫТИИ СМЕНЫ", f"ЧЕКОВ ЗА СМЕНУ {self.fn.receipt_number}",
            f"ПРИХОД {_rub(self.fn.sales_total)}", f"ВОЗВРАТ ПРИХОДА {_rub(self.fn.returns_total)}",
            *self._footer(doc, task.operator),
        ])  # fmt: skip
        return self.fiscal_params(doc)

    def _do_reportX(self, _: T.ReportXTask) -> None:
        if not self.fn.shift_open:
            raise _Refuse(ErrorCode.DENIED_IN_CLOSED_SHIFT)
        self._need_printer()
        self._print([
            "СУТОЧНЫЙ ОТЧЁТ БЕЗ ГАШЕНИЯ (X-ОТЧЁТ)", f"СМЕНА {self.fn.shift_number}",
            f"ЧЕКОВ ЗА СМЕНУ {self.fn.receipt_number}", f"ПРИХОД {_rub(self.fn.sales_total)}",
            f"ВОЗВРАТ ПРИХОДА {_rub(self.fn.returns_total)}", "-" * 40, "",
        ])  # fmt: skip

    # --- receipts ----------------------------------------------------------------------------

    def _check_position(self, n: int, p: T.Position) -> str | None:
        computed = (p.price * p.quantity).quantize(_KOP, ROUND_HALF_UP)
        if p.amount != computed:
            raise _Refuse(ErrorCode.INVALID_SUM, f"позиция {n}: {p.amount} ≠ {p.price} × {p.quantity}")
        if p.measurement_unit is T.MeasurementUnit.PIECE and p.quantity != p.quantity.to_integral_value():
            raise _Refuse(ErrorCode.INVALID_QUANTITY, f"позиция {n}: дробное количество штучного товара")
        if p.payment_object not in _MARKED:
            return None
        if p.imc_params is None:
            raise _Refuse(ErrorCode.NO_REQUIRED_PARAM, f"позиция {n}: imcParams маркированного товара")
        code = _decode_imc(p.imc_params.imc)
        if code not in self._accepted:
            raise _Refuse(
                ErrorCode.INVALID_PARAM, f"позиция {n}: КМ не проверен и не принят (acceptMarkingCode)"
            )
        return code

    def _receipt(self, task: T.ReceiptTask | T.CorrectionTask, doc_type: int) -> dict[str, Any]:
        self._need_shift()
        self._need_printer()
        self._need_fn()
        codes = [c for n, p in enumerate(task.items, 1) if (c := self._check_position(n, p))]
        total = sum((p.amount for p in task.items), Decimal(0))
        if task.total is not None and task.total != total:
            raise _Refuse(ErrorCode.INVALID_SUM, f"итог {task.total} ≠ сумме позиций {total}")
        paid = sum((p.sum for p in task.payments), Decimal(0))
        non_cash = paid - sum((p.sum for p in task.payments if p.type is T.PaymentType.CASH), Decimal(0))
        if paid < total:
            raise _Refuse(ErrorCode.NOT_FULLY_PAID)
        if non_cash > total:
            raise _Refuse(ErrorCode.NONCASH_PAYMENTS_TOO_MUCH)
        operation = _OPERATION[task.type]
        kop = int(total * 100)
        self.fn.receipt_number += 1
        doc = self._document(doc_type, operation, kop)
        if operation in (1, 4):
            self.fn.sales_total += kop
        else:
            self.fn.returns_total += kop
        for code in codes:
            self._accepted.remove(code)
        self._store.save(self.fn)
        self._print_receipt(task, doc, total, paid)
        return self.fiscal_params(doc)

    def _do_receipt(self, task: T.ReceiptTask) -> dict[str, Any]:
        return self._receipt(task, DOC_RECEIPT)

    _do_sell = _do_sellReturn = _do_buy = _do_buyReturn = _do_receipt

    def _do_correction(self, task: T.CorrectionTask) -> dict[str, Any]:
        if task.correction_type is T.CorrectionType.INSTRUCTION and not task.correction_base_number:
            raise _Refuse(ErrorCode.NO_REQUIRED_PARAM, "correctionBaseNumber (1179)")
        base = dt.datetime.strptime(task.correction_base_date, "%Y.%m.%d").date()
        if base > self._now().date():
            raise _Refuse(ErrorCode.INVALID_PARAM, "дата корректируемого расчёта (1178) в будущем")
        return self._receipt(task, DOC_CORRECTION)

    _do_sellCorrection = _do_sellReturnCorrection = _do_buyCorrection = _do_buyReturnCorrection = (
        _do_correction
    )

    def _print_receipt(self, task: T.ReceiptTask | T.CorrectionTask, doc: StoredDocument, total: Decimal,
                       paid: Decimal) -> None:  # fmt: skip
        title = "КАССОВЫЙ ЧЕК КОРРЕКЦИИ" if doc.doc_type == DOC_CORRECTION else _TITLES[doc.operation]
        lines = [title]
        if task.client_info:
            lines.append(f"ПОКУПАТЕЛЬ: {task.client_info.email_or_phone}")
        for p in task.items:
            lines += [
                p.name[:40],
                f"  {p.quantity.normalize():f} x {p.price} = {p.amount}  {p.tax.type.value.upper()}",
            ]
            if p.imc_params:
                lines.append("  [М] товар маркирован")
        lines.append(f"ИТОГ {total}")
        lines += [f"{_PAY_TITLES[p.type]} {p.sum}" for p in task.payments]
        if paid > total:
            lines.append(f"СДАЧА {paid - total}")
        self._print([*lines, *self._footer(doc, task.operator)])

    # --- queries -----------------------------------------------------------------------------

    def _shift_state(self) -> str:
        if not self.fn.shift_open:
            return "closed"
        return "expired" if self._over_24h() else "opened"

    def _do_getShiftStatus(self, _: T.GetShiftStatusTask) -> dict[str, Any]:
        status: dict[str, Any] = {"number": self.fn.shift_number, "state": self._shift_state()}
        if self.fn.shift_opened_at:
            expires = dt.datetime.fromisoformat(self.fn.shift_opened_at).replace(
                microsecond=0
            ) + dt.timedelta(hours=24)
            status["expiredTime"] = self._aware(expires)
        return {"shiftStatus": status}

    def _do_getDeviceStatus(self, _: T.GetDeviceStatusTask) -> dict[str, Any]:
        return {"deviceStatus": {
            "currentDateTime": self._aware(self._now()), "shift": self._shift_state(), "blocked": False,
            "coverOpened": self.cover_open, "paperPresent": self.paper, "fiscal": True, "fnFiscal": True,
            "fnPresent": True, "cashDrawerOpened": False,
        }}  # fmt: skip

    def _do_getLastFiscalParams(self, task: T.GetLastFiscalParamsTask) -> dict[str, Any]:
        kinds = (DOC_RECEIPT, DOC_CORRECTION) if task.for_receipt else tuple(_DOC_NAMES)
        for doc in reversed(self.fn.documents):
            if doc.doc_type in kinds:
                return self.fiscal_params(doc)
        raise _Refuse(ErrorCode.FN_NO_MORE_DATA)

    def _do_getFnDocument(self, task: T.GetFnDocumentTask) -> dict[str, Any]:
        doc = self.fn.find(task.fiscal_document_number)
        if doc is None:
            raise _Refuse(ErrorCode.FN_NO_MORE_DATA, f"ФД {task.fiscal_document_number}")
        tlv: dict[str, Any] = {
            "fiscalDocumentType": _DOC_NAMES.get(doc.doc_type, "receipt"), "short": False,
            "1012": self._aware(dt.datetime.fromisoformat(doc.issued_at)), "1038": doc.shift_number,
            "1040": doc.fd_number, "1041": self.fn.fn_number, "1077": f"{doc.fiscal_sign:010d}",
        }  # fmt: skip
        if doc.doc_type in (DOC_RECEIPT, DOC_CORRECTION):
            tlv |= {
                "1042": doc.receipt_number,
                "1054": doc.operation,
                "1020": (Decimal(doc.total) / 100).quantize(_KOP),
            }
        return {"documentTLV": tlv}

    # --- marking -----------------------------------------------------------------------------

    def _do_beginMarkingCodeValidation(self, task: T.BeginMarkingCodeValidationTask) -> dict[str, Any]:
        if self._checking is not None:
            raise _Refuse(MARKING_CHECK_BUSY)
        code = _decode_imc(task.params.imc)
        self._checking = code
        local_ok = self.marking.get(code, "valid") != "invalid"
        return {"offlineValidation": {"fmCheck": True, "fmCheckResult": local_ok}}

    def _do_getMarkingCodeValidationStatus(self, _: T.GetMarkingCodeValidationStatusTask) -> dict[str, Any]:
        if self._checking is None:
            raise _Refuse(ErrorCode.INVALID_MODE, "проверка КМ не начата")
        verdict = self.marking.get(self._checking, "valid")
        if verdict == "no_connection":
            return {
                "ready": True,
                "sentImcRequest": False,
                "driverError": {
                    "code": ErrorCode.NO_CONNECTION,
                    "description": text(ErrorCode.NO_CONNECTION),
                },
            }
        bits = _ALL_GOOD if verdict == "valid" else _INVALID
        return {"ready": True, "sentImcRequest": True, "onlineValidation": {
            "itemInfoCheckResult": _flags(bits), "markOperatorResponseResult": "correct" if bits == _ALL_GOOD else "incorrect",
        }}  # fmt: skip

    def _do_acceptMarkingCode(self, _: T.AcceptMarkingCodeTask) -> dict[str, Any]:
        if self._checking is None:
            raise _Refuse(ErrorCode.INVALID_MODE, "нет КМ на проверке")
        verdict = self.marking.get(self._checking, "valid")
        self._accepted.append(self._checking)
        self._checking = None
        return {
            "itemInfoCheckResult": _flags({"valid": _ALL_GOOD, "invalid": _INVALID}.get(verdict, _OFFLINE))
        }

    def _do_declineMarkingCode(self, _: T.DeclineMarkingCodeTask) -> None:
        if self._checking is None:
            raise _Refuse(ErrorCode.INVALID_MODE, "нет КМ на проверке")
        self._checking = None

    def _do_cancelMarkingCodeValidation(self, _: T.CancelMarkingCodeValidationTask) -> None:
        self._checking = None


def _result(
    status: Status, code: int, description: str, payload: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "status": status.value,
        "errorCode": int(code),
        "errorDescription": description,
        "result": payload,
    }


def _flags(bits: int) -> dict[str, bool]:
    names = (
        "imcCheckFlag",
        "imcCheckResult",
        "imcStatusInfo",
        "imcEstimatedStatusCorrect",
        "ecrStandAloneFlag",
    )
    return {name: bool(bits >> n & 1) for n, name in enumerate(names)}


def _decode_imc(imc: str) -> str:
    try:
        return base64.b64decode(imc, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _Refuse(ErrorCode.INVALID_PARAM, "imc — не base64 кода маркировки") from exc


def _rub(kop: int) -> str:
    return f"{kop // 100}.{kop % 100:02d}"
