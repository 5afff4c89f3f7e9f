"""ATOL fiscal register driver: the ATOL web server's HTTP API (``/api/v2/requests``) + the
sans-I/O ``protocols.atol`` tasks.

Each operation posts ``{"uuid", "request": [task, ...]}`` and polls ``GET .../{uuid}`` until
every task is final. The uuid is derived from the caller's ``operation_id`` when given
(``uuid5`` of the operation kind and id): a gateway that crashed after posting a sale asks the
same uuid again, the web server answers 409 (or the results) and never prints twice, and the
driver returns the first run's fiscal document. Without ``operation_id`` each call is new.

Errors: a task result with ``status: error`` becomes a ``FiscalRejected`` subclass with ATOL's
``errorCode`` and Russian ``errorDescription``; results not ready before the timeout become
``DeviceTimeout`` (the document may still be printed: retry with the same ``operation_id`` or
ask ``last_document()``); a refused connection ``DeviceUnavailable``; a body that is not JSON or
not ATOL's schema ``DeviceProtocolError``. A receipt is validated in full before anything is
posted (``ReceiptRejected``).

Marked goods (FFD 1.2): per code ``beginMarkingCodeValidation`` → poll
``getMarkingCodeValidationStatus`` until ``ready`` → ``acceptMarkingCode`` (or
``declineMarkingCode`` and a refusal), then the receipt task with ``imcParams``.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid as uuidlib
from collections.abc import Callable, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, TypeVar

import httpx

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
from protocols.atol import build, codec
from protocols.atol import results as R
from protocols.atol import tasks as T
from protocols.atol.codes import ErrorCode
from protocols.atol.errors import LocalProtocolError, RemoteProtocolError
from protocols.fiscal import (
    Cashier,
    Correction,
    FiscalDocument,
    MarkingCode,
    MarkingStatus,
    Receipt,
    ReceiptInvalid,
    SettlementSign,
)

NAMESPACE: Final = uuidlib.UUID("6f1d7c1e-3a7b-5b8e-9a59-7669747269e1")
"""uuid5 namespace of request uuids derived from operation ids (stable forever)."""

_ERRORS: Final = MappingProxyType({
    ErrorCode.NO_PAPER: PaperOut, ErrorCode.SHIFT_EXPIRED: ShiftExpired, ErrorCode.FN_SHIFT_EXPIRED: ShiftExpired,
    ErrorCode.DENIED_IN_CLOSED_SHIFT: ShiftClosed, ErrorCode.DENIED_IN_OPENED_SHIFT: ShiftAlreadyOpen,
    ErrorCode.NOT_FULLY_PAID: PaymentRejected, ErrorCode.NONCASH_PAYMENTS_TOO_MUCH: PaymentRejected,
})  # fmt: skip
_FN_CODES: Final = range(115, 143)  # LIBFPTR_ERROR_FN_* and neighbours: the fiscal storage refused
_MODES: Final = {R.ShiftState.CLOSED: "shift_closed", R.ShiftState.OPENED: "shift_open",
                 R.ShiftState.EXPIRED: "shift_expired"}  # fmt: skip
_KINDS: Final = {"openShift": "shift_open", "closeShift": "shift_close", "receipt": "receipt",
                 "receiptCorrection": "correction"}  # fmt: skip
_M = TypeVar("_M", bound=R._Peer)


class AtolFiscalRegister:
    """``FiscalRegister`` over the ATOL web server (``http://host:16732``)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        query_timeout: float = 10.0,
        poll_interval: float = 0.2,
        http_timeout: float = 5.0,
        cashier: Cashier | None = None,
        today: Callable[[], dt.date] = dt.date.today,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url.rstrip("/").removesuffix(R.API_PATH)
        self.timeout = timeout
        self.query_timeout = query_timeout
        self.poll_interval = poll_interval
        self.http_timeout = http_timeout
        self.cashier = cashier
        self._today = today
        self._client = client
        self._own_client = client is None

    # --- lifecycle -----------------------------------------------------------------------------

    def open(self) -> None:
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=self.http_timeout)

    def close(self) -> None:
        if self._client is not None and self._own_client:
            self._client.close()
            self._client = None

    def __enter__(self) -> AtolFiscalRegister:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one request ---------------------------------------------------------------------------

    @staticmethod
    def request_uuid(kind: str, operation_id: str | None) -> str:
        """The request uuid: derived from ``operation_id`` (stable across retries) or random."""
        if operation_id is None:
            return str(uuidlib.uuid4())
        return str(uuidlib.uuid5(NAMESPACE, f"{kind}:{operation_id}"))

    def _http(self, method: str, path: str, body: str | None = None) -> httpx.Response:
        self.open()
        assert self._client is not None
        try:
            return self._client.request(
                method, self.url + path, content=body.encode("utf-8") if body is not None else None,
                headers={"Content-Type": "application/json; charset=utf-8"} if body is not None else None,
            )  # fmt: skip
        except httpx.TimeoutException as exc:
            raise DeviceTimeout(
                f"Веб-сервер ДТО АТОЛ не ответил ({method} {path}): результат неизвестен"
            ) from exc
        except httpx.HTTPError as exc:
            raise DeviceUnavailable(f"Нет связи с веб-сервером ДТО АТОЛ {self.url}: {exc}") from exc

    @staticmethod
    def _decode(model: type[_M], resp: httpx.Response) -> _M:
        try:
            return R.parse(model, codec.loads(resp.content))
        except RemoteProtocolError as exc:
            raise DeviceProtocolError(f"Веб-сервер ДТО АТОЛ прислал непонятный ответ: {exc.message}") from exc

    def _lookup(self, rid: str) -> R.RequestResults | None:
        resp = self._http("GET", f"{R.API_PATH}/{rid}")
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise DeviceProtocolError(
                f"Веб-сервер ДТО АТОЛ ответил HTTP {resp.status_code} на запрос результата {rid}"
            )
        return self._decode(R.RequestResults, resp)

    def _run(self, tasks: Sequence[T.Task], *, kind: str = "", operation_id: str | None = None,
             timeout: float | None = None) -> list[R.TaskResult]:  # fmt: skip
        """Post the tasks (once per uuid), wait for every result, raise on the first error."""
        rid = self.request_uuid(kind, operation_id)
        body = codec.dumps({"uuid": rid, "request": [t.to_dict() for t in tasks]})
        resp = self._http("POST", R.API_PATH, body)
        if resp.status_code in (200, 201):
            accepted = self._decode(R.Accepted, resp)
            if accepted.uuid != rid:
                raise DeviceProtocolError(f"Веб-сервер ДТО АТОЛ принял задание {accepted.uuid} вместо {rid}")
        elif resp.status_code != 409:  # 409: this uuid ran (or is queued) already — read its results
            raise DeviceProtocolError(
                f"Веб-сервер ДТО АТОЛ отказал в приёме задания: HTTP {resp.status_code}"
            )
        return self._check(self._wait(rid, len(tasks), self.query_timeout if timeout is None else timeout))

    def _wait(self, rid: str, count: int, timeout: float) -> list[R.TaskResult]:
        deadline = time.monotonic() + timeout
        while True:
            found = self._lookup(rid)
            if found is None:
                raise DeviceProtocolError(f"Веб-сервер ДТО АТОЛ не знает задание {rid}, которое принял")
            if len(found.results) != count:
                raise DeviceProtocolError(
                    f"Веб-сервер ДТО АТОЛ вернул {len(found.results)} результатов на {count} заданий ({rid})"
                )
            if found.done:
                return list(found.results)
            if time.monotonic() >= deadline:
                raise DeviceTimeout(
                    f"ККТ АТОЛ не выполнила задание {rid} за {timeout:g} с: результат неизвестен, "
                    "повторите с тем же номером операции"
                )
            time.sleep(self.poll_interval)

    @staticmethod
    def _check(results: list[R.TaskResult]) -> list[R.TaskResult]:
        for r in results:
            if r.status is R.Status.ERROR:
                cls = _ERRORS.get(r.error_code)  # type: ignore[call-overload]
                if cls is None:
                    cls = FiscalStorageFault if r.error_code in _FN_CODES else FiscalRejected
                message = r.error_description or f"ККТ АТОЛ отказала: код ошибки {r.error_code}"
                raise cls(message, device_code=r.error_code)
            if r.status is R.Status.CANCELED:
                raise FiscalRejected("Задание отменено на веб-сервере ДТО АТОЛ", device_code=r.error_code)
        return results

    def _payload(self, model: type[_M], result: R.TaskResult) -> _M:
        if result.result is None:
            raise DeviceProtocolError(f"Веб-сервер ДТО АТОЛ не вернул данных результата ({model.__name__})")
        try:
            return R.parse(model, result.result)
        except RemoteProtocolError as exc:
            raise DeviceProtocolError(f"Веб-сервер ДТО АТОЛ прислал непонятный ответ: {exc.message}") from exc

    def _fiscal(self, task: T.Task, kind: str, operation_id: str | None, sign: SettlementSign | None = None,
                doc_kind: str = "receipt") -> FiscalDocument:  # fmt: skip
        (result,) = self._run([task], kind=kind, operation_id=operation_id, timeout=self.timeout)
        fp = self._payload(R.FiscalResult, result).fiscal_params
        total = fp.total.quantize(Decimal("0.01")) if fp.total is not None else None
        return FiscalDocument(
            fd_number=fp.fiscal_document_number, fiscal_sign=int(fp.fiscal_document_sign),
            issued_at=fp.fiscal_document_date_time.replace(tzinfo=None), kind=doc_kind, sign=sign, total=total,
            shift_number=fp.shift_number, receipt_number=fp.fiscal_receipt_number, fn_number=fp.fn_number,
            extra={"registration_number": fp.registration_number},
        )  # fmt: skip

    # --- status --------------------------------------------------------------------------------

    def status(self) -> RegisterStatus:
        device, shift = self._run([T.GetDeviceStatusTask(), T.GetShiftStatusTask()])
        dev = self._payload(R.DeviceStatusResult, device).device_status
        sh = self._payload(R.ShiftStatusResult, shift).shift_status
        last = self._last_params(for_receipt=False)
        receipts = 0
        if sh.state is not R.ShiftState.CLOSED:
            last_receipt = self._last_params(for_receipt=True)
            if last_receipt is not None and last_receipt.shift_number == sh.number:
                receipts = last_receipt.fiscal_receipt_number or 0
        return RegisterStatus(
            mode=_MODES[sh.state], shift_open=sh.state is not R.ShiftState.CLOSED, shift_number=sh.number,
            shift_over_24h=sh.state is R.ShiftState.EXPIRED, receipt_open=False, paper_present=dev.paper_present,
            cover_open=dev.cover_opened, fn_number=last.fn_number if last else "", fn_expires=None,
            fn_memory_almost_full=False, last_fd_number=last.fiscal_document_number if last else 0,
            receipts_in_shift=receipts, device_time=dev.current_date_time.replace(tzinfo=None),
            shift_opened_at=(sh.expired_time - dt.timedelta(hours=24)).replace(tzinfo=None) if sh.expired_time else None,
        )  # fmt: skip

    def _last_params(self, *, for_receipt: bool) -> R.FiscalParams | None:
        try:
            (result,) = self._run([T.GetLastFiscalParamsTask(for_receipt=for_receipt)])
        except FiscalRejected as exc:
            if exc.device_code == ErrorCode.FN_NO_MORE_DATA:
                return None
            raise
        return self._payload(R.FiscalResult, result).fiscal_params

    # --- shift ---------------------------------------------------------------------------------

    def open_shift(self, cashier: Cashier, operation_id: str | None = None) -> FiscalDocument:
        self.cashier = cashier
        task = T.OpenShiftTask(operator=build.operator(cashier))
        return self._fiscal(task, "openShift", operation_id, doc_kind="shift_open")

    def x_report(self) -> None:
        operator = build.operator(self.cashier) if self.cashier else None
        self._run([T.ReportXTask(operator=operator)], timeout=self.timeout)

    def close_shift(self, cashier: Cashier, operation_id: str | None = None) -> FiscalDocument:
        task = T.CloseShiftTask(operator=build.operator(cashier))
        return self._fiscal(task, "closeShift", operation_id, doc_kind="shift_close")

    # --- receipts ------------------------------------------------------------------------------

    def cancel_receipt(self) -> bool:
        """Always ``False``: a JSON receipt task opens and closes (or cancels) its receipt itself,
        so the web server never leaves one open between tasks."""
        return False

    def sell(self, receipt: Receipt, operation_id: str | None = None) -> FiscalDocument:
        if receipt.sign not in (SettlementSign.INCOME, SettlementSign.EXPENSE):
            raise ReceiptRejected("sell() регистрирует приход или расход; для возврата — refund()")
        return self._register(receipt, operation_id)

    def refund(self, receipt: Receipt, operation_id: str | None = None) -> FiscalDocument:
        if receipt.sign not in (SettlementSign.INCOME_RETURN, SettlementSign.EXPENSE_RETURN):
            raise ReceiptRejected("refund() регистрирует возврат прихода или расхода")
        return self._register(receipt, operation_id)

    def _register(self, receipt: Receipt, operation_id: str | None) -> FiscalDocument:
        today = self._today()
        try:
            receipt.validate(today)
            task: T.Task = build.receipt_task(receipt, today, self.cashier)
        except (ReceiptInvalid, LocalProtocolError) as exc:
            raise ReceiptRejected(exc.message) from exc
        if self._already_done(task.type, operation_id):
            return self._fiscal(task, task.type, operation_id, receipt.sign)
        for n, item in enumerate(receipt.items, 1):
            if item.marking is not None:
                self._accept_marking(n, item.marking)
        return self._fiscal(task, task.type, operation_id, receipt.sign)

    def _already_done(self, kind: str, operation_id: str | None) -> bool:
        """A retried operation whose request the web server already has: skip the marking steps."""
        return operation_id is not None and self._lookup(self.request_uuid(kind, operation_id)) is not None

    def correct(self, correction: Correction, operation_id: str | None = None) -> FiscalDocument:
        today = self._today()
        try:
            correction.validate(today)
            task = build.correction_task(correction, today, self.cashier)
        except (ReceiptInvalid, LocalProtocolError) as exc:
            raise ReceiptRejected(exc.message) from exc
        return self._fiscal(task, task.type, operation_id, correction.receipt.sign, doc_kind="correction")

    # --- documents -----------------------------------------------------------------------------

    def last_document(self) -> FiscalDocument | None:
        last = self._last_params(for_receipt=False)
        return self.document(last.fiscal_document_number) if last else None

    def document(self, fd_number: int) -> FiscalDocument | None:
        try:
            (result,) = self._run([T.GetFnDocumentTask(fiscal_document_number=fd_number)])
        except FiscalRejected as exc:
            if exc.device_code == ErrorCode.FN_NO_MORE_DATA:
                return None
            raise
        tlv = self._payload(R.FnDocumentResult, result).document_tlv
        try:
            return _document_from_tlv(tlv)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise DeviceProtocolError(
                f"Документ ФН {fd_number} от веб-сервера ДТО АТОЛ не разобран: {exc!r}"
            ) from exc

    # --- marking -------------------------------------------------------------------------------

    def _validate_code(self, marking: MarkingCode) -> tuple[bool, bool, int]:
        """(valid, checked_online, 2106 bits) after begin → status polled until ready."""
        (begin,) = self._run([T.BeginMarkingCodeValidationTask(params=build.imc_params(marking))])
        offline = self._payload(R.BeginValidationResult, begin).offline_validation
        deadline = time.monotonic() + self.query_timeout
        while True:
            (res,) = self._run([T.GetMarkingCodeValidationStatusTask()])
            status = self._payload(R.ValidationStatusResult, res)
            if status.ready:
                break
            if time.monotonic() >= deadline:
                self._run([T.CancelMarkingCodeValidationTask()])
                raise DeviceTimeout("Проверка кода маркировки не завершилась вовремя")
            time.sleep(self.poll_interval)
        if status.online_validation is not None:
            bits = status.online_validation.item_info_check_result.bits
            return offline.fm_check_result and bool(bits & 0x02), True, bits
        bits = (0x03 if offline.fm_check_result else 0x01) | 0x10  # checked by the FN only, offline
        return offline.fm_check_result, False, bits

    def _accept_marking(self, n: int, marking: MarkingCode) -> None:
        valid, _, bits = self._validate_code(marking)
        if not valid:
            self._run([T.DeclineMarkingCodeTask()])
            raise FiscalRejected(
                f"Код маркировки не прошёл проверку (позиция {n}, результат 2106 = {bits:02X}h)",
                device_code=0,
            )
        self._run([T.AcceptMarkingCodeTask()])

    def check_marking_code(
        self, code: str, planned_status: MarkingStatus = MarkingStatus.PIECE_SOLD
    ) -> MarkingCheck:
        try:
            marking = MarkingCode(code, planned_status)
        except ReceiptInvalid as exc:
            raise ReceiptRejected(exc.message) from exc
        valid, online, bits = self._validate_code(marking)
        self._run([T.DeclineMarkingCodeTask()])  # a check only: do not keep it for a receipt
        return MarkingCheck(code=code, valid=valid, checked_online=online, check_result=bits, code_type=0)


def _document_from_tlv(tlv: dict[str, Any]) -> FiscalDocument:
    issued = dt.datetime.fromisoformat(str(tlv["1012"])).replace(tzinfo=None)
    sign = SettlementSign(int(tlv["1054"])) if "1054" in tlv else None
    total = Decimal(tlv["1020"]).quantize(Decimal("0.01")) if "1020" in tlv else None
    return FiscalDocument(
        fd_number=int(tlv["1040"]), fiscal_sign=int(tlv["1077"]), issued_at=issued,
        kind=_KINDS.get(str(tlv.get("fiscalDocumentType")), "other"), sign=sign, total=total,
        shift_number=int(tlv["1038"]) if "1038" in tlv else None,
        receipt_number=int(tlv["1042"]) if "1042" in tlv else None, fn_number=tlv.get("1041"),
    )  # fmt: skip
