"""ATOL driver 10 JSON tasks ("JSON-задания", libfptr10 ``processJson``) as typed, frozen models.

Field names and enum values: camelCase as in ATOL's JSON schema. Sources: the project notes
(``KKTServiceLib`` types, marked [V] there), ``ExLuzZziVo/KKTServiceLib`` enums (``ItemUnitType``,
``PaymentObjectType``, ``ShiftStatus``, ``FiscalDocumentType``, correction task) and the
``getLastFiscalParams {forReceipt}`` task an ATOL web-server clone sends. Unverified: the
2025-2026 tax names ``vat5 vat7 vat105 vat107 vat22 vat122`` (the same names ATOL Online's
cloud API uses) [K], and numeric vs string ``measurementUnit`` in FFD 1.2 (we send the
camelCase names ``KKTServiceLib`` serializes) [K].

A task serializes with ``Task.to_json()`` (exact decimals, see ``codec``) and parses with
``parse_task(dict)`` (extra fields are refused, so a typo in a driver fails loudly in the
simulator instead of being silently dropped).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

from protocols.atol.codec import dumps
from protocols.atol.errors import LocalProtocolError


class TaxType(StrEnum):
    """``tax.type`` (tag 1199)."""

    NONE = "none"
    VAT0 = "vat0"
    VAT10 = "vat10"
    VAT110 = "vat110"
    VAT20 = "vat20"
    VAT120 = "vat120"
    VAT22 = "vat22"  # [K] from 2026
    VAT122 = "vat122"  # [K]
    VAT5 = "vat5"  # [K] USN VAT from 2025
    VAT105 = "vat105"  # [K]
    VAT7 = "vat7"  # [K]
    VAT107 = "vat107"  # [K]


class TaxationType(StrEnum):
    """``taxationType`` (tag 1055)."""

    OSN = "osn"
    USN_INCOME = "usnIncome"
    USN_INCOME_OUTCOME = "usnIncomeOutcome"
    ESN = "esn"
    PATENT = "patent"


class PaymentMethod(StrEnum):
    """``paymentMethod`` (tag 1214 values 1..7 in this order)."""

    FULL_PREPAYMENT = "fullPrepayment"
    PREPAYMENT = "prepayment"
    ADVANCE = "advance"
    FULL_PAYMENT = "fullPayment"
    PARTIAL_PAYMENT = "partialPayment"
    CREDIT = "credit"
    CREDIT_PAYMENT = "creditPayment"


class PaymentObject(StrEnum):
    """``paymentObject`` (tag 1212, the subset food retail uses)."""

    COMMODITY = "commodity"  # 1
    EXCISE = "excise"  # 2
    JOB = "job"  # 3
    SERVICE = "service"  # 4
    PAYMENT = "payment"  # 10
    ANOTHER = "another"  # 13
    EXCISE_WITHOUT_MARKING = "exciseWithoutMarking"  # 30
    EXCISE_WITH_MARKING = "exciseWithMarking"  # 31
    COMMODITY_WITHOUT_MARKING = "commodityWithoutMarking"  # 32
    COMMODITY_WITH_MARKING = "commodityWithMarking"  # 33


class MeasurementUnit(StrEnum):
    """``measurementUnit`` (tag 2108)."""

    PIECE = "piece"  # 0
    GRAM = "gram"  # 10
    KILOGRAM = "kilogram"  # 11
    TON = "ton"  # 12
    CENTIMETER = "centimeter"  # 20
    DECIMETER = "decimeter"  # 21
    METER = "meter"  # 22
    MILLILITER = "milliliter"  # 40
    LITER = "liter"  # 41
    CUBIC_METER = "cubicMeter"  # 42
    OTHER_UNITS = "otherUnits"  # 255


class PaymentType(StrEnum):
    """``payments[].type``: 1031 cash, 1081 electronic, 1215 prepaid, 1216 credit, 1217 other."""

    CASH = "cash"
    ELECTRONICALLY = "electronically"
    PREPAID = "prepaid"
    CREDIT = "credit"
    OTHER = "other"


class ItemEstimatedStatus(StrEnum):
    """``imcParams.itemEstimatedStatus`` (tag 2003 values 1, 2, 3, 4, 255)."""

    PIECE_SOLD = "itemPieceSold"
    DRY_FOR_SALE = "itemDryForSale"
    PIECE_RETURN = "itemPieceReturn"
    DRY_RETURN = "itemDryReturn"
    UNCHANGED = "itemStatusUnchanged"


class CorrectionType(StrEnum):
    """``correctionType`` (tag 1173: 0 self, 1 by order)."""

    SELF = "self"
    INSTRUCTION = "instruction"


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True, use_enum_values=False
    )

    def to_dict(self) -> dict[str, Any]:
        """Decoded-JSON form (``type`` first, ``None`` left out, ``Decimal`` kept exact)."""
        data = self.model_dump(by_alias=True, exclude_none=True)
        return {"type": data.pop("type"), **data} if "type" in data else data

    def to_json(self) -> str:
        return dumps(self.to_dict())


Money = Annotated[Decimal, Field(ge=0, max_digits=15, decimal_places=2)]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)]


class Operator(_Model):
    """1021 cashier name, 1203 cashier INN."""

    name: str = Field(min_length=1, max_length=64)
    vatin: str | None = Field(default=None, pattern=r"^(\d{10}|\d{12})$")


class Tax(_Model):
    type: TaxType


class ImcParams(_Model):
    """A marking code: ``imc`` is the code as scanned (GS kept), base64."""

    imc_type: str = "auto"
    imc: str = Field(min_length=1)
    item_estimated_status: ItemEstimatedStatus
    imc_mode_processing: int = 0
    item_quantity: Quantity | None = None  # validation params only
    item_units: MeasurementUnit | None = None  # validation params only


class Position(_Model):
    type: Literal["position"] = "position"
    name: str = Field(min_length=1, max_length=128)
    price: Money
    quantity: Quantity
    amount: Money
    measurement_unit: MeasurementUnit = MeasurementUnit.PIECE
    payment_method: PaymentMethod = PaymentMethod.FULL_PAYMENT
    payment_object: PaymentObject = PaymentObject.COMMODITY
    tax: Tax
    department: int | None = None
    imc_params: ImcParams | None = None


class Payment(_Model):
    type: PaymentType
    sum: Money


class ClientInfo(_Model):
    email_or_phone: str = Field(min_length=1, max_length=64)


class _Document(_Model):
    taxation_type: TaxationType = TaxationType.OSN
    electronically: bool = False
    operator: Operator
    client_info: ClientInfo | None = None
    items: tuple[Position, ...] = Field(min_length=1, max_length=100)
    payments: tuple[Payment, ...] = Field(min_length=1)
    total: Money | None = None


class ReceiptTask(_Document):
    """``sell`` / ``sellReturn`` / ``buy`` / ``buyReturn``."""

    type: Literal["sell", "sellReturn", "buy", "buyReturn"]


class CorrectionTask(_Document):
    """FFD 1.2 correction receipt: a full receipt plus 1173 and 1174 (1178 date, 1179 order)."""

    type: Literal["sellCorrection", "sellReturnCorrection", "buyCorrection", "buyReturnCorrection"]
    correction_type: CorrectionType
    correction_base_date: str = Field(pattern=r"^\d{4}\.\d{2}\.\d{2}$")  # "yyyy.MM.dd"
    correction_base_number: str | None = Field(default=None, max_length=32)


class OpenShiftTask(_Model):
    type: Literal["openShift"] = "openShift"
    operator: Operator


class CloseShiftTask(_Model):
    type: Literal["closeShift"] = "closeShift"
    operator: Operator


class ReportXTask(_Model):
    type: Literal["reportX"] = "reportX"
    operator: Operator | None = None


class GetDeviceStatusTask(_Model):
    type: Literal["getDeviceStatus"] = "getDeviceStatus"


class GetShiftStatusTask(_Model):
    type: Literal["getShiftStatus"] = "getShiftStatus"


class GetLastFiscalParamsTask(_Model):
    """Fiscal params of the last document (``forReceipt``: of the last receipt)."""

    type: Literal["getLastFiscalParams"] = "getLastFiscalParams"
    for_receipt: bool = False


class GetFnDocumentTask(_Model):
    type: Literal["getFnDocument"] = "getFnDocument"
    fiscal_document_number: int = Field(ge=1)
    with_raw_data: bool | None = None


class BeginMarkingCodeValidationTask(_Model):
    type: Literal["beginMarkingCodeValidation"] = "beginMarkingCodeValidation"
    params: ImcParams


class GetMarkingCodeValidationStatusTask(_Model):
    type: Literal["getMarkingCodeValidationStatus"] = "getMarkingCodeValidationStatus"


class AcceptMarkingCodeTask(_Model):
    type: Literal["acceptMarkingCode"] = "acceptMarkingCode"


class DeclineMarkingCodeTask(_Model):
    type: Literal["declineMarkingCode"] = "declineMarkingCode"


class CancelMarkingCodeValidationTask(_Model):
    type: Literal["cancelMarkingCodeValidation"] = "cancelMarkingCodeValidation"


Task = Annotated[
    ReceiptTask
    | CorrectionTask
    | OpenShiftTask
    | CloseShiftTask
    | ReportXTask
    | GetDeviceStatusTask
    | GetShiftStatusTask
    | GetLastFiscalParamsTask
    | GetFnDocumentTask
    | BeginMarkingCodeValidationTask
    | GetMarkingCodeValidationStatusTask
    | AcceptMarkingCodeTask
    | DeclineMarkingCodeTask
    | CancelMarkingCodeValidationTask,
    Field(discriminator="type"),
]

_TASK: TypeAdapter[Task] = TypeAdapter(Task)

FISCAL_TYPES = frozenset({
    "openShift", "closeShift", "sell", "buy", "sellReturn", "buyReturn", "sellCorrection", "buyCorrection",
    "sellReturnCorrection", "buyReturnCorrection",
})  # fmt: skip
"""Tasks that make a fiscal document: the web server takes at most one per request."""


class TaskInvalid(LocalProtocolError):
    """A task that does not fit the schema. ``reason``: ``unknown_type``, ``missing``, ``invalid``."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def parse_task(data: object) -> Task:
    """A task from decoded JSON; ``TaskInvalid`` names the first bad field, in Russian."""
    try:
        return _TASK.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            kind = data.get("type") if isinstance(data, dict) else None
            raise TaskInvalid(f"неизвестный тип задания «{kind}»", "unknown_type") from exc
        reason = "missing" if err["type"] == "missing" else "invalid"
        raise TaskInvalid(f"{where}: {err['msg']}", reason) from exc
