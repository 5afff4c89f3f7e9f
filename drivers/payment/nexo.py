"""nexo Retailer (Sale to POI) card terminals over TCP: ``NexoTerminal``.

Transport: one TCP connection (``TCP_NODELAY``), opened lazily and logged in (``Login``) on
every connect; a connection found closed is reopened before the next operation. The sans-I/O
``protocols.nexo.Connection`` turns bytes into messages; this module only moves bytes and
decides.

Identifiers. Each operation id (the bus ``command_id``) goes to the terminal twice:
``SaleData.SaleTransactionID.TransactionID`` (≤ 35 characters; a longer UUID is sent as its 32
hex digits) and, because the header's ServiceID is at most 10 characters, ``service_id_for(op)``
(10 base32 characters of its SHA-256). A purchase or refund is the Payment with that ServiceID,
its cancel the Reversal with the same ServiceID, so ``find`` can ask ``TransactionStatus`` by
MessageReference without any local state, after a restart too. A repeated response whose
TransactionID is not ours (a hash collision) is never taken for ours.

Lost answers. When the operation's ``timeout`` passes, the driver sends ``Abort`` (honoured
until the bank is asked) and waits ``service_timeout`` more on the same connection. When the
connection breaks, the framing is lost, or still no answer, it asks ``TransactionStatus`` on a
new connection, polling while the terminal says ``InProgress``, for ``service_timeout``: the
stored response decides; ``NotFound`` → a declined result ``not_performed``; anything else →
``OutcomeUnknown``. A garbled frame while waiting is answered by a ``TransactionStatus`` on the
same connection (the terminal may still be working; its stored response, once there, decides).

Progress: ``DisplayRequest`` texts (card / PIN / bank) and ``EventNotification`` ``CardInserted``
(a chip card: PIN next) → ``STAGE_*``, each reported once when it changes, from the calling thread.
A ``Reject`` notification before any progress means the terminal refused our request unread:
nothing was performed → ``DeviceProtocolError``.

Outcome codes: ``ErrorCondition`` refined by ``reason=`` in ``AdditionalResponse`` (table
``_OUTCOMES``); ``device_code`` is ``Condition`` or ``Condition/Reason``. ``Busy`` → ``TerminalBusy``.

Locking: one operation per object (``TerminalBusy`` at once); ``abort()`` is the one call that
may come from another thread while an operation runs.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final
from urllib.parse import parse_qs

from drivers.errors import (
    DeviceProtocolError,
    DeviceRejected,
    DeviceTimeout,
    DeviceUnavailable,
    DriverConfigError,
    DriverError,
)
from drivers.payment.base import (
    KOPECK,
    OP_CANCEL,
    OP_PURCHASE,
    OP_REFUND,
    STAGE_AUTHORISING,
    STAGE_PIN_ENTRY,
    STAGE_WAITING_CARD,
    OperationNotFound,
    OutcomeUnknown,
    PaymentResult,
    Progress,
    ReconciliationResult,
    TerminalBusy,
    TerminalStatus,
    from_kopecks,
    to_kopecks,
)
from protocols.nexo import NEED_DATA, Connection, FrameTooLarge, MalformedMessage
from protocols.nexo.frames import MAX_FRAME
from protocols.nexo.messages import (
    PROTOCOL_VERSION,
    AbortRequest,
    AmountsReq,
    DisplayRequest,
    ErrorCondition,
    EventNotification,
    LoginRequest,
    LoginResponse,
    Message,
    MessageCategory,
    MessageClass,
    MessageHeader,
    MessageReference,
    MessageType,
    PaymentData,
    PaymentRequest,
    PaymentResponse,
    PaymentTransaction,
    POIData,
    ReconciliationRequest,
    ReconciliationResponse,
    Response,
    Result,
    ReversalRequest,
    ReversalResponse,
    SaleData,
    SaleSoftware,
    TransactionIdentification,
    TransactionStatusRequest,
    TransactionStatusResponse,
)

log = logging.getLogger(__name__)

NOT_PERFORMED: Final = "not_performed"
SOFTWARE_VERSION: Final = "1.0"
_POLL: Final = 0.2

_CONDITIONS: Final[dict[ErrorCondition, tuple[str, str]]] = {
    ErrorCondition.CANCEL: ("customer_cancelled", "Операция отменена покупателем"),
    ErrorCondition.ABORTED: ("aborted", "Операция прервана с кассы"),
    ErrorCondition.WRONG_PIN: ("pin_error", "ПИН-код не введён, введён неверно или заблокирован"),
    ErrorCondition.REFUSAL: ("declined", "Банк отказал в операции, предложите другую карту"),
    ErrorCondition.INVALID_CARD: ("card_error", "Операцию невозможно выполнить для этой карты"),
    ErrorCondition.PAYMENT_RESTRICTION: ("card_error", "Оплата этой картой на терминале запрещена"),
    ErrorCondition.UNREACHABLE_HOST: ("no_bank_link", "Нет связи с банком, повторите через пару минут"),
    ErrorCondition.NOT_FOUND: ("not_found", "Исходная операция не найдена или сумма не совпадает"),
    ErrorCondition.NOT_ALLOWED: ("not_allowed", "Терминал не разрешает эту операцию"),
    ErrorCondition.BUSY: ("terminal_busy", "Терминал занят другой операцией"),
    ErrorCondition.LOGGED_OUT: ("logged_out", "Касса не вошла в терминал, повторите операцию"),
    ErrorCondition.MESSAGE_FORMAT: ("terminal_error", "Терминал не понял запрос кассы: обратитесь в поддержку"),
}
_OUTCOMES: Final[dict[tuple[ErrorCondition, str], tuple[str, str]]] = {
    (ErrorCondition.CANCEL, "Timeout"): ("timeout", "Слишком долгий ввод ПИН-кода или ожидание карты"),
    (ErrorCondition.REFUSAL, "InsufficientFunds"): ("insufficient_funds", "Недостаточно средств на карте"),
    (ErrorCondition.REFUSAL, "CardBlocked"): ("card_blocked", "Карта заблокирована, предложите оплатить другой картой"),
    (ErrorCondition.REFUSAL, "LimitExceeded"): ("limit_exceeded", "Превышен лимит операций по карте"),
    (ErrorCondition.NOT_ALLOWED, "ReconciliationRequired"): (
        "reconcile_required", "Требуется сверка итогов, затем повторите операцию"),
    (ErrorCondition.NOT_ALLOWED, "Currency"): ("bad_currency", "Неверный код валюты, обратитесь в банк"),
    (ErrorCondition.NOT_ALLOWED, "AlreadyReversed"): ("already_cancelled", "Операция уже отменена"),
    (ErrorCondition.NOT_ALLOWED, "BatchClosed"): (
        "batch_closed", "Пакет операции закрыт сверкой: отмена невозможна, оформите возврат"),
}


def service_id_for(operation_id: str) -> str:
    """The 10-character ServiceID of an operation: base32 of its SHA-256 (50 bits)."""
    return base64.b32encode(hashlib.sha256(operation_id.encode()).digest()).decode("ascii")[:10]


def sale_reference(operation_id: str) -> str:
    """The SaleTransactionID.TransactionID for ``operation_id`` (≤ 35 characters)."""
    if 0 < len(operation_id) <= 35:
        return operation_id
    try:
        return uuid.UUID(operation_id).hex
    except ValueError:
        raise DriverConfigError(
            f"Идентификатор операции {operation_id[:40]!r} длиннее 35 символов и не UUID", code="invalid_request"
        ) from None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _outcome(response: Response) -> tuple[str, str, str]:
    """(code, message for the cashier, device_code) of a failed response."""
    condition = response.ErrorCondition
    if condition is None:
        return "terminal_error", "Терминал отказал без указания причины", response.Result.value
    reason = parse_qs(response.AdditionalResponse or "").get("reason", [""])[0]
    device_code = f"{condition.value}/{reason}" if reason else condition.value
    code, message = _OUTCOMES.get((condition, reason)) or _CONDITIONS.get(condition) or (
        "terminal_error", f"Ошибка терминала ({device_code}): обратитесь в поддержку банка")
    return code, message, device_code


def _amount(value: Decimal | None, what: str) -> Decimal:
    if value is None or not value.is_finite() or value < 0 or value.quantize(KOPECK) != value:
        raise DeviceProtocolError(f"Терминал прислал недопустимую сумму {what}: {value}")
    return value.quantize(KOPECK)


def _stage_of(message: DisplayRequest | EventNotification) -> str | None:
    if isinstance(message, EventNotification):
        return STAGE_PIN_ENTRY if message.EventToNotify == "CardInserted" else None
    text = message.text.upper()
    if "ПИН" in text or "PIN" in text:
        return STAGE_PIN_ENTRY
    if any(word in text for word in ("БАНК", "АВТОРИЗ", "ОБМЕН", "AUTHORI", "PROCESSING")):
        return STAGE_AUTHORISING
    if "КАРТ" in text or "CARD" in text:
        return STAGE_WAITING_CARD
    return None


class _Lost(Exception):
    """The answer of a card operation is lost: the link broke, lost its framing, or timed out."""

    def __init__(self, why: str, cause: BaseException | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.cause = cause


class _Timeout(Exception):
    pass


class _InProgress(Exception):
    pass


@dataclass
class _Link:
    sock: socket.socket
    conn: Connection


class _Stages:
    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.last: str | None = None

    def feed(self, message: DisplayRequest | EventNotification) -> None:
        stage = _stage_of(message)
        if stage is not None and stage != self.last:
            self.last = stage
            if self.progress is not None:
                self.progress(stage)


Convert = Callable[[Any, bool], PaymentResult]


class NexoTerminal:
    """``PaymentTerminal`` over nexo Retailer JSON on TCP. See the module docstring."""

    def __init__(
        self,
        host: str,
        port: int,
        sale_id: str = "VITRINA",
        poi_id: str = "POI1",
        *,
        timeout: float = 180.0,
        service_timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_frame: int = MAX_FRAME,
    ) -> None:
        if not host or not isinstance(port, int) or not 0 < port < 65536:
            raise DriverConfigError(f"Неверный адрес терминала {host}:{port}")
        if not 0 < len(sale_id) <= 32 or not 0 < len(poi_id) <= 32:
            raise DriverConfigError("SaleID и POIID терминала должны быть от 1 до 32 символов")
        if timeout <= 0 or service_timeout <= 0 or connect_timeout <= 0:
            raise DriverConfigError("Таймауты терминала должны быть положительными")
        self.host, self.port, self.sale_id, self.poi_id = host, port, sale_id, poi_id
        self.timeout = timeout
        self.service_timeout = service_timeout
        self.connect_timeout = connect_timeout
        self.max_frame = max_frame
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._link: _Link | None = None
        self._running: tuple[MessageCategory, str] | None = None

    def __repr__(self) -> str:
        return f"NexoTerminal({self.host!r}, {self.port}, sale_id={self.sale_id!r}, poi_id={self.poi_id!r})"

    # --- lifecycle -----------------------------------------------------------------------

    def open(self) -> None:
        """Connect and log in; ``DeviceUnavailable`` / ``DeviceTimeout`` / ``DeviceRejected`` if not."""
        with self._exclusive():
            self._ensure()

    def close(self) -> None:
        with self._send_lock:
            self._drop()

    def status(self) -> TerminalStatus:
        if not self._lock.acquire(blocking=False):
            return TerminalStatus("busy", "Идёт операция")
        try:
            self._ensure()
        except DriverError as exc:
            return TerminalStatus("offline", exc.message)
        finally:
            self._lock.release()
        return TerminalStatus("idle")

    def abort(self) -> bool:
        """Ask the terminal to stop the running card operation (the cashier's «Отмена»).

        The only call allowed from another thread during an operation. The operation's own
        call then returns its result (``aborted``, or approved when the bank had already been
        asked). ``False`` when nothing is running or the request could not be sent.
        """
        running, link = self._running, self._link
        if running is None or link is None:
            return False
        try:
            self._send(link, self._abort_message(*running))
        except OSError:
            return False
        return True

    # --- card operations -----------------------------------------------------------------

    def purchase(self, amount: Decimal, operation_id: str, progress: Progress | None = None) -> PaymentResult:
        requested = from_kopecks(to_kopecks(amount))
        body = PaymentRequest(
            SaleData=self._sale_data(operation_id),
            PaymentTransaction=PaymentTransaction(AmountsReq=AmountsReq(RequestedAmount=requested)),
        )
        with self._exclusive():
            return self._card(OP_PURCHASE, operation_id, self._request(MessageCategory.PAYMENT, body, operation_id),
                              progress, self._payment_converter(operation_id, OP_PURCHASE, requested))

    def refund(
        self, amount: Decimal, operation_id: str, original: PaymentResult | str, progress: Progress | None = None
    ) -> PaymentResult:
        """``original``: the purchase's result, or its POI transaction id (``reference``) / RRN."""
        requested = from_kopecks(to_kopecks(amount))
        ref = (original.reference or original.rrn) if isinstance(original, PaymentResult) else original
        if not 0 < len(ref) <= 35:
            raise DriverConfigError(f"Неверная ссылка на исходную операцию {ref[:40]!r}", code="invalid_request")
        body = PaymentRequest(
            SaleData=self._sale_data(operation_id),
            PaymentTransaction=PaymentTransaction(AmountsReq=AmountsReq(RequestedAmount=requested)),
            PaymentData=PaymentData(PaymentType="Refund", OriginalPOITransaction=POIData(
                POITransactionID=TransactionIdentification(TransactionID=ref, TimeStamp=_now()))),
        )
        with self._exclusive():
            return self._card(OP_REFUND, operation_id, self._request(MessageCategory.PAYMENT, body, operation_id),
                              progress, self._payment_converter(operation_id, OP_REFUND, requested))

    def cancel(self, operation_id: str, progress: Progress | None = None) -> PaymentResult:
        """Void the purchase ``operation_id`` by a Reversal with the same ServiceID. Idempotent."""
        sale_reference(operation_id)
        sid = service_id_for(operation_id)
        with self._exclusive():
            try:
                done = self._lookup(MessageCategory.REVERSAL, sid)
                if isinstance(done, ReversalResponse) and done.Response.Result is Result.SUCCESS:
                    return self._void_result(done, operation_id, True)
                paid = self._lookup(MessageCategory.PAYMENT, sid)
            except _InProgress:
                raise TerminalBusy(f"Операция {operation_id} ещё выполняется на терминале") from None
            if (not isinstance(paid, PaymentResponse) or paid.Response.Result is not Result.SUCCESS
                    or paid.POIData is None or not self._ours(paid, operation_id)):
                raise OperationNotFound(f"Одобренная операция {operation_id} не найдена в терминале: отменять нечего")
            request = self._request(MessageCategory.REVERSAL, ReversalRequest(OriginalPOITransaction=paid.POIData),
                                    operation_id)
            return self._card(OP_CANCEL, operation_id, request, progress,
                              lambda body, resolved: self._void_result(body, operation_id, resolved))

    def find(self, operation_id: str) -> PaymentResult | None:
        sale_reference(operation_id)
        sid = service_id_for(operation_id)
        with self._exclusive():
            try:
                paid = self._lookup(MessageCategory.PAYMENT, sid)
            except _InProgress:
                raise OutcomeUnknown(f"Операция {operation_id} ещё выполняется на терминале: дождитесь её окончания",
                                     operation_id=operation_id) from None
            except DriverError as exc:
                raise OutcomeUnknown(f"Не удалось узнать у терминала результат операции {operation_id}: {exc.message}",
                                     operation_id=operation_id) from exc
            if paid is None:
                return None
            result = self._convert(self._payment_converter(operation_id, OP_PURCHASE, None), paid, True, operation_id)
            if result.approved:
                with contextlib.suppress(_InProgress, DriverError):
                    voided = self._lookup(MessageCategory.REVERSAL, sid)
                    if isinstance(voided, ReversalResponse) and voided.Response.Result is Result.SUCCESS:
                        result = replace(result, voided=True)
            return result

    # --- service operations --------------------------------------------------------------

    def reconcile(self) -> ReconciliationResult:
        with self._exclusive():
            body = self._service(self._request(MessageCategory.RECONCILIATION, ReconciliationRequest()),
                                 self.service_timeout)
            if not isinstance(body, ReconciliationResponse):
                raise DeviceProtocolError("Терминал ответил на сверку не тем сообщением")
            if body.Response.Result is not Result.SUCCESS:
                if body.Response.ErrorCondition is ErrorCondition.BUSY:
                    raise TerminalBusy("Терминал занят операцией другой кассы")
                code, message, _ = _outcome(body.Response)
                return ReconciliationResult(False, code, message)
            totals: dict[str, tuple[int, Decimal]] = {}
            for group in body.TransactionTotals:
                for line in group.PaymentTotals:
                    count, amount = totals.get(line.TransactionType, (0, Decimal("0.00")))
                    totals[line.TransactionType] = (count + line.TransactionCount,
                                                    amount + _amount(line.TransactionAmount, "в итогах сверки"))
            zero = (0, Decimal("0.00"))
            (pc, pa), (rc, ra), (vc, va) = (totals.get(k, zero) for k in ("Debit", "Credit", "ReverseDebit"))
            batch = body.POIReconciliationID or ""
            slip = "\n".join([
                "СВЕРКА ИТОГОВ", f"ТЕРМИНАЛ {self.poi_id}", f"ПАКЕТ {batch}", f"ОПЛАТА: {pc} НА {pa} РУБ",
                f"ВОЗВРАТ: {rc} НА {ra} РУБ", f"ОТМЕНА: {vc} НА {va} РУБ", "ИТОГИ СОВПАЛИ",
            ])
            return ReconciliationResult(True, "approved", "Итоги совпали", batch=batch, purchases_count=pc,
                                        purchases_amount=pa, refunds_count=rc, refunds_amount=ra, voids_count=vc,
                                        voids_amount=va, slip=slip)

    def last_slip(self) -> str:
        with self._exclusive():
            request = self._request(MessageCategory.TRANSACTION_STATUS,
                                    TransactionStatusRequest(ReceiptReprintFlag=True))
            body = self._service(request, self.service_timeout)
            if not isinstance(body, TransactionStatusResponse):
                raise DeviceProtocolError("Терминал ответил на запрос копии чека не тем сообщением")
            if body.Response.Result is not Result.SUCCESS:
                if body.Response.ErrorCondition is ErrorCondition.NOT_FOUND:
                    raise DeviceRejected("В терминале нет последнего чека", code="no_slip")
                code, message, _ = _outcome(body.Response)
                raise DeviceRejected(message, code=code)
            repeated = self._repeated(body)
            receipts = repeated.PaymentReceipt if repeated is not None else ()
            if not receipts:
                raise DeviceRejected("В терминале нет последнего чека", code="no_slip")
            return "КОПИЯ\n" + "\n\n".join(r.text for r in receipts)

    # --- messages ------------------------------------------------------------------------

    def _header(self, category: MessageCategory, service_id: str) -> MessageHeader:
        return MessageHeader(MessageClass=MessageClass.SERVICE, MessageCategory=category,
                             MessageType=MessageType.REQUEST, SaleID=self.sale_id, POIID=self.poi_id,
                             ServiceID=service_id, ProtocolVersion=PROTOCOL_VERSION)

    def _request(self, category: MessageCategory, body: object, operation_id: str | None = None) -> Message:
        sid = service_id_for(operation_id) if operation_id is not None else secrets.token_hex(5)
        return Message(MessageHeader=self._header(category, sid), body=body)

    def _abort_message(self, category: MessageCategory, service_id: str) -> Message:
        ref = MessageReference(MessageCategory=category, ServiceID=service_id, SaleID=self.sale_id, POIID=self.poi_id)
        return self._request(MessageCategory.ABORT, AbortRequest(MessageReference=ref))

    @staticmethod
    def _sale_data(operation_id: str) -> SaleData:
        return SaleData(SaleTransactionID=TransactionIdentification(TransactionID=sale_reference(operation_id),
                                                                    TimeStamp=_now()))

    @staticmethod
    def _ours(body: PaymentResponse, operation_id: str) -> bool:
        return body.SaleData.SaleTransactionID.TransactionID == sale_reference(operation_id)

    @staticmethod
    def _repeated(body: TransactionStatusResponse) -> PaymentResponse | ReversalResponse | None:
        repeated = body.RepeatedMessageResponse
        if repeated is None:
            return None
        inner = repeated.RepeatedResponseMessageBody
        return inner.PaymentResponse or inner.ReversalResponse

    # --- results -------------------------------------------------------------------------

    def _payment_converter(self, operation_id: str, operation: str, requested: Decimal | None) -> Convert:
        def convert(body: Any, resolved: bool) -> PaymentResult:
            if not isinstance(body, PaymentResponse):
                raise DeviceProtocolError("Терминал ответил на оплату не тем сообщением")
            if not self._ours(body, operation_id):
                raise OutcomeUnknown(
                    f"Терминал вернул ответ другой операции ({body.SaleData.SaleTransactionID.TransactionID}) "
                    f"вместо {operation_id}: проверьте терминал, не повторяйте оплату", operation_id=operation_id)
            response = body.Response
            if response.Result is Result.FAILURE:
                code, message, device_code = _outcome(response)
                return PaymentResult(approved=False, operation=operation, operation_id=operation_id,
                                     amount=requested if requested is not None else Decimal("0.00"), code=code,
                                     message=message, device_code=device_code)
            paid = body.PaymentResult
            authorised = paid.AmountsResp.AuthorizedAmount if paid is not None and paid.AmountsResp else requested
            acquirer = paid.PaymentAcquirerData if paid is not None else None
            card = paid.PaymentInstrumentData if paid is not None else None
            rrn = acquirer.AcquirerTransactionID.TransactionID if acquirer and acquirer.AcquirerTransactionID else ""
            return PaymentResult(
                approved=True,
                operation=OP_REFUND if paid is not None and paid.PaymentType == "Refund" else OP_PURCHASE,
                operation_id=operation_id, amount=_amount(authorised, "операции"), code="approved",
                message="Операция одобрена" + (" (по запросу состояния терминала)" if resolved else ""),
                device_code=response.Result.value, auth_code=(acquirer.ApprovalCode or "") if acquirer else "",
                rrn=rrn, card_mask=card.CardData.MaskedPan if card else "",
                slip="\n\n".join(r.text for r in body.PaymentReceipt),
                reference=body.POIData.POITransactionID.TransactionID if body.POIData else rrn,
            )

        return convert

    @staticmethod
    def _void_result(body: Any, operation_id: str, resolved: bool) -> PaymentResult:
        if not isinstance(body, ReversalResponse):
            raise DeviceProtocolError("Терминал ответил на отмену не тем сообщением")
        if body.Response.Result is Result.FAILURE:
            code, message, device_code = _outcome(body.Response)
            if code in ("not_found", "batch_closed"):
                raise OperationNotFound(message, code=code)
            return PaymentResult(approved=False, operation=OP_CANCEL, operation_id=operation_id,
                                 amount=Decimal("0.00"), code=code, message=message, device_code=device_code)
        reference = body.POIData.POITransactionID.TransactionID if body.POIData else ""
        return PaymentResult(
            approved=True, operation=OP_CANCEL, operation_id=operation_id,
            amount=_amount(body.ReversedAmount, "отмены"), code="approved",
            message="Операция отменена" + (" (по запросу состояния терминала)" if resolved else ""),
            device_code=body.Response.Result.value, rrn=reference, reference=reference,
            slip="\n\n".join(r.text for r in body.PaymentReceipt),
        )

    # --- the card exchange ---------------------------------------------------------------

    def _card(self, operation: str, operation_id: str, request: Message, progress: Progress | None,
              convert: Convert) -> PaymentResult:
        category = request.MessageHeader.MessageCategory
        sid = request.MessageHeader.ServiceID
        assert sid is not None
        for attempt in range(2):
            link = self._ensure()  # failures here: nothing was sent
            self._running = (category, sid)
            try:
                body, resolved = self._await_card(link, request, progress)
            except _Lost as lost:
                self._drop()
                return self._resolve(operation, operation_id, category, sid, lost, convert)
            finally:
                self._running = None
            condition = body.Response.ErrorCondition if body.Response.Result is Result.FAILURE else None
            if condition is ErrorCondition.LOGGED_OUT and attempt == 0:
                self._drop()
                continue
            if condition is ErrorCondition.BUSY:
                raise TerminalBusy("Терминал занят операцией другой кассы")
            return self._convert(convert, body, resolved, operation_id)
        raise AssertionError("unreachable")

    @staticmethod
    def _convert(convert: Convert, body: Any, resolved: bool, operation_id: str) -> PaymentResult:
        """A response that claims an outcome but does not parse leaves the outcome unknown."""
        try:
            return convert(body, resolved)
        except DeviceProtocolError as exc:
            raise OutcomeUnknown(f"Ответ терминала по операции {operation_id} не разобран: {exc.message}. "
                                 "Проверьте терминал, не повторяйте оплату", operation_id=operation_id) from exc

    def _await_card(self, link: _Link, request: Message, progress: Progress | None) -> tuple[Any, bool]:
        """The response to ``request`` and whether it came by TransactionStatus; ``_Lost`` when
        it cannot be had on this link."""
        header = request.MessageHeader
        stages = _Stages(progress)
        status_sid: str | None = None
        aborted = False
        try:
            self._send(link, request)
        except OSError as exc:
            raise _Lost("запрос не удалось отправить", exc) from exc
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                message = self._receive(link, deadline)
            except _Timeout:
                if aborted:
                    raise _Lost(f"терминал не ответил за {self.timeout:g} с и после прерывания") from None
                aborted = True
                log.warning("nexo: no answer in %.1f s, aborting %s", self.timeout, header.ServiceID)
                with contextlib.suppress(OSError):
                    self._send(link, self._abort_message(header.MessageCategory, header.ServiceID or ""))
                deadline = time.monotonic() + self.service_timeout
                continue
            except MalformedMessage as exc:
                log.warning("nexo: garbled message from the terminal (%s); asking TransactionStatus", exc)
                status = self._request(MessageCategory.TRANSACTION_STATUS, TransactionStatusRequest(
                    MessageReference=MessageReference(MessageCategory=header.MessageCategory,
                                                      ServiceID=header.ServiceID or "", SaleID=self.sale_id,
                                                      POIID=self.poi_id),
                    ReceiptReprintFlag=True))
                status_sid = status.MessageHeader.ServiceID
                try:
                    self._send(link, status)
                except OSError as send_error:
                    raise _Lost(f"ответ терминала повреждён ({exc})", exc) from send_error
                continue
            body, got = message.body, message.MessageHeader
            if isinstance(body, DisplayRequest | EventNotification):
                if isinstance(body, EventNotification) and body.EventToNotify == "Reject" and stages.last is None:
                    self._drop()
                    raise DeviceProtocolError(f"Терминал отклонил запрос кассы: {body.EventDetails or 'без причины'}",
                                              code="rejected")
                stages.feed(body)
                continue
            if got.MessageType is not MessageType.RESPONSE:
                continue
            if got.MessageCategory is header.MessageCategory and got.ServiceID == header.ServiceID:
                return body, False
            if status_sid is not None and got.ServiceID == status_sid and isinstance(body, TransactionStatusResponse):
                repeated = self._repeated(body)
                if body.Response.Result is Result.SUCCESS and repeated is not None:
                    return repeated, True
            log.debug("nexo: ignoring %s %s", got.MessageCategory.value, got.ServiceID)

    def _resolve(self, operation: str, operation_id: str, category: MessageCategory, sid: str, lost: _Lost,
                 convert: Convert) -> PaymentResult:
        """After a lost answer: the terminal's stored response decides, or the outcome is unknown."""
        until = time.monotonic() + self.service_timeout
        why = lost.why
        while True:
            try:
                found = self._lookup(category, sid, until=until)
            except _InProgress:
                why = f"{lost.why}; терминал всё ещё выполняет операцию"
            except DriverError as exc:
                self._drop()
                why = f"{lost.why}; состояние не получено: {exc.message}"
            else:
                if found is None:
                    return PaymentResult(
                        approved=False, operation=operation, operation_id=operation_id, amount=Decimal("0.00"),
                        code=NOT_PERFORMED,
                        message=f"Операция не проведена: {lost.why}; терминал её не получил, списания не было")
                return self._convert(convert, found, True, operation_id)
            if time.monotonic() + _POLL >= until:
                raise OutcomeUnknown(
                    f"Результат операции {operation_id} неизвестен: {why}. Проверьте терминал, не повторяйте оплату",
                    operation_id=operation_id) from lost.cause
            time.sleep(_POLL)

    def _lookup(self, category: MessageCategory, sid: str, *, until: float | None = None
                ) -> PaymentResponse | ReversalResponse | None:
        """The stored response of (category, ServiceID); ``None`` = NotFound; ``_InProgress``."""
        ref = MessageReference(MessageCategory=category, ServiceID=sid, SaleID=self.sale_id, POIID=self.poi_id)
        request = self._request(MessageCategory.TRANSACTION_STATUS,
                                TransactionStatusRequest(MessageReference=ref, ReceiptReprintFlag=True))
        timeout = self.service_timeout if until is None else max(0.05, until - time.monotonic())
        body = self._service(request, timeout)
        if not isinstance(body, TransactionStatusResponse):
            raise DeviceProtocolError("Терминал ответил на запрос состояния не тем сообщением")
        if body.Response.Result is Result.SUCCESS:
            repeated = self._repeated(body)
            if repeated is None:
                raise DeviceProtocolError("Терминал не прислал сохранённый ответ операции")
            return repeated
        if body.Response.ErrorCondition is ErrorCondition.IN_PROGRESS:
            raise _InProgress
        if body.Response.ErrorCondition is ErrorCondition.NOT_FOUND:
            return None
        code, message, _ = _outcome(body.Response)
        raise DeviceRejected(f"Терминал не сообщил состояние операции: {message}", code=code)

    # --- transport -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        if not self._lock.acquire(blocking=False):
            raise TerminalBusy("Терминал занят другой операцией")
        try:
            yield
        finally:
            self._lock.release()

    def _ensure(self, timeout: float | None = None) -> _Link:
        link = self._link
        if link is not None and self._alive(link):
            return link
        self._drop()
        wait = self.connect_timeout if timeout is None else min(self.connect_timeout, timeout)
        try:
            sock = socket.create_connection((self.host, self.port), timeout=wait)
        except OSError as exc:
            raise DeviceUnavailable(f"Нет связи с терминалом {self.host}:{self.port}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(sock, Connection(self.max_frame))
        login = self._request(MessageCategory.LOGIN, LoginRequest(
            DateTime=_now(), SaleSoftware=SaleSoftware(ManufacturerID="Vitrina", ApplicationName="Vitrina gateway",
                                                       SoftwareVersion=SOFTWARE_VERSION)))
        body = self._exchange(link, login, self.service_timeout if timeout is None else timeout)
        if not isinstance(body, LoginResponse) or body.Response.Result is not Result.SUCCESS:
            sock.close()
            reason = _outcome(body.Response)[2] if isinstance(body, LoginResponse) else "не тот ответ"
            raise DeviceRejected(f"Терминал {self.poi_id} отказал кассе {self.sale_id} во входе ({reason})",
                                 code="login_rejected")
        self._link = link
        return link

    @staticmethod
    def _alive(link: _Link) -> bool:
        """``False`` when the peer closed the connection (a zero-byte peek)."""
        try:
            link.sock.settimeout(0.0)  # with a timeout set, CPython would wait for data before peeking
            return link.sock.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False

    def _drop(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            with contextlib.suppress(OSError):
                link.sock.close()

    def _send(self, link: _Link, message: Message) -> None:
        data = link.conn.send(message)
        with self._send_lock:
            link.sock.sendall(data)

    def _receive(self, link: _Link, deadline: float) -> Message:
        """One message; ``_Timeout``; ``_Lost`` (closed, broken, framing lost); ``MalformedMessage``."""
        while True:
            try:
                event = link.conn.next_event()
            except FrameTooLarge as exc:
                raise _Lost(f"терминал прислал поток без разметки кадров ({exc})", exc) from exc
            if event is not NEED_DATA:
                assert isinstance(event, Message)
                return event
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Timeout
            try:
                link.sock.settimeout(left)
                data = link.sock.recv(65536)
            except TimeoutError:
                raise _Timeout from None
            except OSError as exc:
                raise _Lost(f"соединение с терминалом разорвано ({exc})", exc) from exc
            if not data:
                raise _Lost("терминал закрыл соединение")
            link.conn.receive_data(data)

    def _exchange(self, link: _Link, request: Message, timeout: float) -> Any:
        """A request without a customer (Login, TransactionStatus, Reconciliation): its response body."""
        header = request.MessageHeader
        deadline = time.monotonic() + timeout
        try:
            self._send(link, request)
            while True:
                message = self._receive(link, deadline)
                got = message.MessageHeader
                if isinstance(message.body, EventNotification) and message.body.EventToNotify == "Reject":
                    raise DeviceProtocolError(
                        f"Терминал отклонил запрос кассы: {message.body.EventDetails or 'без причины'}", code="rejected")
                if (got.MessageType is MessageType.RESPONSE and got.MessageCategory is header.MessageCategory
                        and got.ServiceID == header.ServiceID):
                    return message.body
        except _Timeout:
            self._close(link)
            raise DeviceTimeout(f"Терминал не ответил на {header.MessageCategory.value} за {timeout:g} с") from None
        except _Lost as exc:
            self._close(link)
            raise DeviceUnavailable(f"Связь с терминалом потеряна: {exc.why}") from exc
        except OSError as exc:
            self._close(link)
            raise DeviceUnavailable(f"Связь с терминалом потеряна: {exc}") from exc
        except MalformedMessage as exc:
            self._close(link)
            raise DeviceProtocolError(f"Терминал прислал нечитаемое сообщение: {exc}") from exc
        except DeviceProtocolError:
            self._close(link)
            raise

    def _close(self, link: _Link) -> None:
        if self._link is link:
            self._link = None
        with contextlib.suppress(OSError):
            link.sock.close()

    def _service(self, request: Message, timeout: float) -> Any:
        """``_exchange`` on the current link, logging in again once if the terminal says LoggedOut."""
        for attempt in range(2):
            link = self._ensure(timeout)
            body = self._exchange(link, request, timeout)
            response: Response | None = getattr(body, "Response", None)
            if (attempt == 0 and response is not None and response.Result is Result.FAILURE
                    and response.ErrorCondition is ErrorCondition.LOGGED_OUT):
                self._drop()
                continue
            return body
        raise AssertionError("unreachable")
