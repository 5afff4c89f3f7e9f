"""nexo Retailer (ISO 20022 Sale to POI, v3.1) messages as frozen pydantic models, JSON names.

Shape of every message (Swedbank Pay / Adyen / Market Pay nexo guides)::

    {"SaleToPOIRequest": {"MessageHeader": {...}, "PaymentRequest": {...}}}
    {"SaleToPOIResponse": {"MessageHeader": {...}, "PaymentResponse": {...}}}

The body's name is MessageCategory + MessageType. ServiceID is at most 10 characters and
identifies a request/response pair; SaleTransactionID.TransactionID (≤ 35) is the sale's own
reference. Amounts are JSON numbers in currency units (nexo's decimal type); they are parsed
to ``Decimal`` (never float) and must have at most 2 decimals (kopecks).

Covered: Login, Payment (Normal / Refund), Reversal, Reconciliation, Abort, TransactionStatus,
and the POI → Sale DisplayRequest / EventNotification used for progress. Fields the peer adds
that we do not model are ignored (forward compatible); missing mandatory fields are errors.
"""


from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

PROTOCOL_VERSION = "3.1"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class MessageClass(StrEnum):
    SERVICE = "Service"
    DEVICE = "Device"
    EVENT = "Event"


_MessageClass = MessageClass


class MessageCategory(StrEnum):
    LOGIN = "Login"
    PAYMENT = "Payment"
    REVERSAL = "Reversal"
    RECONCILIATION = "Reconciliation"
    ABORT = "Abort"
    TRANSACTION_STATUS = "TransactionStatus"
    DISPLAY = "Display"
    EVENT = "Event"


_MessageCategory = MessageCategory


class MessageType(StrEnum):
    REQUEST = "Request"
    RESPONSE = "Response"
    NOTIFICATION = "Notification"


_MessageType = MessageType


class Result(StrEnum):
    SUCCESS = "Success"
    FAILURE = "Failure"
    PARTIAL = "Partial"


_Result = Result


class ErrorCondition(StrEnum):
    ABORTED = "Aborted"
    BUSY = "Busy"
    CANCEL = "Cancel"
    DEVICE_OUT = "DeviceOut"
    INSERTED_CARD = "InsertedCard"
    IN_PROGRESS = "InProgress"
    LOGGED_OUT = "LoggedOut"
    MESSAGE_FORMAT = "MessageFormat"
    NOT_ALLOWED = "NotAllowed"
    NOT_FOUND = "NotFound"
    PAYMENT_RESTRICTION = "PaymentRestriction"
    REFUSAL = "Refusal"
    UNAVAILABLE_DEVICE = "UnavailableDevice"
    UNAVAILABLE_SERVICE = "UnavailableService"
    INVALID_CARD = "InvalidCard"
    UNREACHABLE_HOST = "UnreachableHost"
    WRONG_PIN = "WrongPIN"


_ErrorCondition = ErrorCondition


Amount = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]


class MessageHeader(_Model):
    MessageClass: _MessageClass
    MessageCategory: _MessageCategory
    MessageType: _MessageType
    SaleID: str = Field(min_length=1, max_length=32)
    POIID: str = Field(min_length=1, max_length=32)
    ServiceID: str | None = Field(default=None, min_length=1, max_length=10)
    ProtocolVersion: str | None = None


_MessageHeader = MessageHeader


class Response(_Model):
    Result: _Result
    ErrorCondition: _ErrorCondition | None = None
    AdditionalResponse: str | None = None


_Response = Response


class TransactionIdentification(_Model):
    TransactionID: str = Field(min_length=1, max_length=35)
    TimeStamp: str


class SaleData(_Model):
    SaleTransactionID: TransactionIdentification


_SaleData = SaleData


class POIData(_Model):
    POITransactionID: TransactionIdentification


_POIData = POIData


class AmountsReq(_Model):
    Currency: str = "RUB"
    RequestedAmount: Amount


_AmountsReq = AmountsReq


class PaymentTransaction(_Model):
    AmountsReq: _AmountsReq


_PaymentTransaction = PaymentTransaction


class PaymentData(_Model):
    PaymentType: str = "Normal"
    """``Normal`` or ``Refund``."""
    OriginalPOITransaction: POIData | None = None


_PaymentData = PaymentData


class OutputText(_Model):
    Text: str


_OutputText = OutputText


class OutputContent(_Model):
    OutputFormat: str = "Text"
    OutputText: tuple[_OutputText, ...] = ()


_OutputContent = OutputContent


class PaymentReceipt(_Model):
    DocumentQualifier: str = "CustomerReceipt"
    OutputContent: _OutputContent

    @property
    def text(self) -> str:
        return "\n".join(line.Text for line in self.OutputContent.OutputText)


_PaymentReceipt = PaymentReceipt


class CardData(_Model):
    MaskedPan: str = ""


_CardData = CardData


class PaymentInstrumentData(_Model):
    PaymentInstrumentType: str = "Card"
    CardData: _CardData = _CardData()


_PaymentInstrumentData = PaymentInstrumentData


class AcquirerTransactionID(_Model):
    TransactionID: str


_AcquirerTransactionID = AcquirerTransactionID


class PaymentAcquirerData(_Model):
    ApprovalCode: str | None = None
    AcquirerTransactionID: _AcquirerTransactionID | None = None


_PaymentAcquirerData = PaymentAcquirerData


class AmountsResp(_Model):
    Currency: str = "RUB"
    AuthorizedAmount: Decimal


_AmountsResp = AmountsResp


class PaymentResult(_Model):
    PaymentType: str = "Normal"
    AmountsResp: _AmountsResp | None = None
    PaymentInstrumentData: _PaymentInstrumentData | None = None
    PaymentAcquirerData: _PaymentAcquirerData | None = None


_PaymentResult = PaymentResult


class SaleSoftware(_Model):
    ManufacturerID: str
    ApplicationName: str
    SoftwareVersion: str
    CertificationCode: str = "none"


_SaleSoftware = SaleSoftware


class LoginRequest(_Model):
    DateTime: str
    SaleSoftware: _SaleSoftware
    OperatorLanguage: str = "ru"


class POIStatus(_Model):
    GlobalStatus: str = "OK"


_POIStatus = POIStatus


class POISystemData(_Model):
    DateTime: str
    POIStatus: _POIStatus = _POIStatus()


_POISystemData = POISystemData


class LoginResponse(_Model):
    Response: _Response
    POISystemData: _POISystemData | None = None


class PaymentRequest(_Model):
    SaleData: _SaleData
    PaymentTransaction: _PaymentTransaction
    PaymentData: _PaymentData = _PaymentData()


class PaymentResponse(_Model):
    Response: _Response
    SaleData: _SaleData
    POIData: _POIData | None = None
    PaymentResult: _PaymentResult | None = None
    PaymentReceipt: tuple[_PaymentReceipt, ...] = ()


_PaymentResponse = PaymentResponse


class ReversalRequest(_Model):
    OriginalPOITransaction: POIData
    ReversalReason: str = "MerchantCancel"


class ReversalResponse(_Model):
    Response: _Response
    POIData: _POIData | None = None
    ReversedAmount: Decimal | None = None
    PaymentReceipt: tuple[_PaymentReceipt, ...] = ()


_ReversalResponse = ReversalResponse


class ReconciliationRequest(_Model):
    ReconciliationType: str = "SaleReconciliation"


class PaymentTotals(_Model):
    TransactionType: str
    """``Debit`` (purchases), ``Credit`` (refunds), ``ReverseDebit`` (voided purchases)."""
    TransactionCount: int
    TransactionAmount: Decimal


_PaymentTotals = PaymentTotals


class TransactionTotals(_Model):
    PaymentInstrumentType: str = "Card"
    PaymentTotals: tuple[_PaymentTotals, ...] = ()


_TransactionTotals = TransactionTotals


class ReconciliationResponse(_Model):
    Response: _Response
    ReconciliationType: str = "SaleReconciliation"
    POIReconciliationID: str | None = None
    TransactionTotals: tuple[_TransactionTotals, ...] = ()


class MessageReference(_Model):
    MessageCategory: _MessageCategory
    ServiceID: str = Field(min_length=1, max_length=10)
    SaleID: str | None = None
    POIID: str | None = None


_MessageReference = MessageReference


class AbortRequest(_Model):
    MessageReference: _MessageReference
    AbortReason: str = "MerchantAbort"


class TransactionStatusRequest(_Model):
    MessageReference: _MessageReference | None = None
    ReceiptReprintFlag: bool = False


class RepeatedResponseMessageBody(_Model):
    PaymentResponse: _PaymentResponse | None = None
    ReversalResponse: _ReversalResponse | None = None


_RepeatedResponseMessageBody = RepeatedResponseMessageBody


class RepeatedMessageResponse(_Model):
    MessageHeader: _MessageHeader
    RepeatedResponseMessageBody: _RepeatedResponseMessageBody


_RepeatedMessageResponse = RepeatedMessageResponse


class TransactionStatusResponse(_Model):
    Response: _Response
    MessageReference: _MessageReference | None = None
    RepeatedMessageResponse: _RepeatedMessageResponse | None = None


class DisplayOutput(_Model):
    Device: str = "CashierDisplay"
    InfoQualify: str = "Status"
    OutputContent: _OutputContent


_DisplayOutput = DisplayOutput


class DisplayRequest(_Model):
    DisplayOutput: tuple[_DisplayOutput, ...]

    @property
    def text(self) -> str:
        return "\n".join(line.Text for out in self.DisplayOutput for line in out.OutputContent.OutputText)


class EventNotification(_Model):
    TimeStamp: str
    EventToNotify: str
    EventDetails: str | None = None


Body = (
    LoginRequest | LoginResponse | PaymentRequest | PaymentResponse | ReversalRequest | ReversalResponse
    | ReconciliationRequest | ReconciliationResponse | AbortRequest | TransactionStatusRequest
    | TransactionStatusResponse | DisplayRequest | EventNotification
)

BODIES: dict[str, type[_Model]] = {
    cls.__name__: cls
    for cls in (
        LoginRequest, LoginResponse, PaymentRequest, PaymentResponse, ReversalRequest, ReversalResponse,
        ReconciliationRequest, ReconciliationResponse, AbortRequest, TransactionStatusRequest,
        TransactionStatusResponse, DisplayRequest, EventNotification,
    )
}


class Message(_Model):
    """One Sale to POI message: the header and the body its category and type name."""

    MessageHeader: _MessageHeader
    body: Any

    @field_validator("body")
    @classmethod
    def _known_body(cls, value: Any) -> Any:
        if type(value).__name__ not in BODIES:
            raise ValueError(f"unsupported body {type(value).__name__}")
        return value

    @property
    def envelope(self) -> str:
        return "SaleToPOIResponse" if self.MessageHeader.MessageType is MessageType.RESPONSE else "SaleToPOIRequest"

    @property
    def body_name(self) -> str:
        return f"{self.MessageHeader.MessageCategory.value}{self.MessageHeader.MessageType.value}"
