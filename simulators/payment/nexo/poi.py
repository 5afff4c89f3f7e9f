"""What the simulated POI says: response headers, outcomes, receipts, progress messages.

Outcomes. The shared model decides with UPOS result codes; a nexo terminal answers with
``Response.Result`` + ``ErrorCondition`` and puts the bank's detail in ``AdditionalResponse``
as ``reason=<Reason>&code=<bank code>`` (the key=value form Adyen and others use):

    customer cancel      Cancel                     pin timeout    Cancel, reason=Timeout
    wrong PIN            WrongPIN                   no bank link   UnreachableHost
    insufficient funds   Refusal, InsufficientFunds card blocked   Refusal, CardBlocked
    limit                Refusal, LimitExceeded     card error     InvalidCard
    сверка needed        NotAllowed, ReconciliationRequired
    original not found / amount mismatch            NotFound, OriginalTransaction
    other codes          Refusal, reason=Declined

Progress: before each stage the POI sends the cashier display a ``DisplayRequest``; once the
card is read it also sends ``EventNotification`` ``CardInserted``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlencode

from protocols.nexo.messages import (
    AcquirerTransactionID,
    AmountsResp,
    CardData,
    DisplayOutput,
    DisplayRequest,
    ErrorCondition,
    EventNotification,
    Message,
    MessageCategory,
    MessageClass,
    MessageHeader,
    MessageType,
    OutputContent,
    OutputText,
    PaymentAcquirerData,
    PaymentInstrumentData,
    PaymentReceipt,
    PaymentResult,
    POIData,
    Response,
    Result,
    TransactionIdentification,
)
from protocols.upos import codes
from simulators.payment.model import AUTHORISING, PIN_ENTRY, PURCHASE, REFUND, WAITING_CARD, Entry, Rules

DISPLAY = {
    WAITING_CARD: "ПРИЛОЖИТЕ ИЛИ ВСТАВЬТЕ КАРТУ",
    PIN_ENTRY: "ВВЕДИТЕ ПИН-КОД",
    AUTHORISING: "СВЯЗЬ С БАНКОМ...",
}

_BY_CATEGORY: dict[codes.Category, tuple[ErrorCondition, str]] = {
    codes.Category.CUSTOMER_CANCELLED: (ErrorCondition.CANCEL, ""),
    codes.Category.TIMEOUT: (ErrorCondition.CANCEL, "Timeout"),
    codes.Category.PIN_ERROR: (ErrorCondition.WRONG_PIN, ""),
    codes.Category.NO_BANK_LINK: (ErrorCondition.UNREACHABLE_HOST, ""),
    codes.Category.INSUFFICIENT_FUNDS: (ErrorCondition.REFUSAL, "InsufficientFunds"),
    codes.Category.CARD_BLOCKED: (ErrorCondition.REFUSAL, "CardBlocked"),
    codes.Category.LIMIT_EXCEEDED: (ErrorCondition.REFUSAL, "LimitExceeded"),
    codes.Category.CARD_ERROR: (ErrorCondition.INVALID_CARD, ""),
    codes.Category.BAD_CURRENCY: (ErrorCondition.NOT_ALLOWED, "Currency"),
    codes.Category.RECONCILE_REQUIRED: (ErrorCondition.NOT_ALLOWED, "ReconciliationRequired"),
    codes.Category.NOT_FOUND: (ErrorCondition.NOT_FOUND, "OriginalTransaction"),
}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def failure(condition: ErrorCondition, reason: str = "", code: int | None = None) -> Response:
    fields = {k: v for k, v in (("reason", reason), ("code", "" if code is None else str(code))) if v}
    return Response(Result=Result.FAILURE, ErrorCondition=condition, AdditionalResponse=urlencode(fields) or None)


def outcome(code: int) -> Response:
    """The nexo ``Response`` for a model result code."""
    if code == codes.APPROVED:
        return Response(Result=Result.SUCCESS)
    condition, reason = _BY_CATEGORY.get(codes.lookup(code).category, (ErrorCondition.REFUSAL, "Declined"))
    return failure(condition, reason, code)


def reply_header(request: MessageHeader) -> MessageHeader:
    return request.model_copy(update={"MessageType": MessageType.RESPONSE})


def reply(request: Message, body: object) -> Message:
    return Message(MessageHeader=reply_header(request.MessageHeader), body=body)


def poi_data(entry: Entry) -> POIData:
    return POIData(POITransactionID=TransactionIdentification(TransactionID=entry.rrn, TimeStamp=entry.ts.isoformat()))


def amount(kop: int) -> Decimal:
    return (Decimal(kop) / 100).quantize(Decimal("0.01"))


def payment_result(entry: Entry) -> PaymentResult:
    return PaymentResult(
        PaymentType="Refund" if entry.kind == REFUND else "Normal",
        AmountsResp=AmountsResp(AuthorizedAmount=amount(entry.amount_kop)),
        PaymentInstrumentData=PaymentInstrumentData(CardData=CardData(MaskedPan=entry.card_mask)),
        PaymentAcquirerData=PaymentAcquirerData(
            ApprovalCode=entry.auth_code, AcquirerTransactionID=AcquirerTransactionID(TransactionID=entry.rrn)
        ),
    )


def receipt(rules: Rules, entry: Entry) -> PaymentReceipt:
    title = {PURCHASE: "ОПЛАТА", REFUND: "ВОЗВРАТ"}.get(entry.kind, "ОТМЕНА")
    lines = [
        rules.merchant, f"ТЕРМИНАЛ {rules.terminal_id}", entry.ts.strftime("%d.%m.%y %H:%M:%S"), title,
        f"СУММА: {amount(entry.amount_kop)} РУБ", f"КАРТА: {entry.card_mask}", f"КОД АВТОРИЗАЦИИ: {entry.auth_code}",
        f"RRN: {entry.rrn}", f"ОПЕРАЦИЯ: {entry.order}", "ОДОБРЕНО",
    ]
    return PaymentReceipt(OutputContent=OutputContent(OutputText=tuple(OutputText(Text=t) for t in lines)))


def _poi_header(category: MessageCategory, cls: MessageClass, kind: MessageType, sale_id: str, poi_id: str,
                service_id: str | None) -> MessageHeader:
    return MessageHeader(MessageClass=cls, MessageCategory=category, MessageType=kind, SaleID=sale_id,
                         POIID=poi_id, ServiceID=service_id, ProtocolVersion="3.1")


def display(stage: str, sale_id: str, poi_id: str, service_id: str) -> Message:
    header = _poi_header(MessageCategory.DISPLAY, MessageClass.DEVICE, MessageType.REQUEST, sale_id, poi_id,
                         service_id)
    text = OutputContent(OutputText=(OutputText(Text=DISPLAY[stage]),))
    return Message(MessageHeader=header, body=DisplayRequest(DisplayOutput=(DisplayOutput(OutputContent=text),)))


def event(what: str, sale_id: str, poi_id: str, details: str | None = None) -> Message:
    header = _poi_header(MessageCategory.EVENT, MessageClass.EVENT, MessageType.NOTIFICATION, sale_id, poi_id, None)
    return Message(MessageHeader=header, body=EventNotification(TimeStamp=now(), EventToNotify=what,
                                                                EventDetails=details))
