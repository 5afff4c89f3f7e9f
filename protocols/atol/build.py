"""``protocols.fiscal`` receipts → ATOL JSON tasks.

The tax name comes from the dated rate table (``protocols.fiscal.tax``), not from the VAT kind:
the general rate is ``vat20`` until 2025-12-31 and ``vat22`` from 2026-01-01; a calculated rate
p/(100+p) is ``vat1pp`` (``vat120``, ``vat122``, ``vat110``, ``vat105``, ``vat107``).
"""

from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from protocols.atol import tasks as T
from protocols.atol.errors import LocalProtocolError
from protocols.fiscal import (
    Cashier,
    Correction,
    CorrectionType,
    Item,
    ItemType,
    MarkingCode,
    MarkingStatus,
    Measure,
    PaymentMethod,
    Receipt,
    SettlementSign,
    Taxation,
    TaxRate,
    resolve,
)

RECEIPT_TYPES: Final = MappingProxyType({
    SettlementSign.INCOME: "sell", SettlementSign.INCOME_RETURN: "sellReturn",
    SettlementSign.EXPENSE: "buy", SettlementSign.EXPENSE_RETURN: "buyReturn",
})  # fmt: skip
CORRECTION_TYPES: Final = MappingProxyType({
    SettlementSign.INCOME: "sellCorrection", SettlementSign.INCOME_RETURN: "sellReturnCorrection",
    SettlementSign.EXPENSE: "buyCorrection", SettlementSign.EXPENSE_RETURN: "buyReturnCorrection",
})  # fmt: skip
TAXATION: Final = MappingProxyType({
    Taxation.OSN: T.TaxationType.OSN, Taxation.USN_INCOME: T.TaxationType.USN_INCOME,
    Taxation.USN_INCOME_EXPENSE: T.TaxationType.USN_INCOME_OUTCOME, Taxation.ESHN: T.TaxationType.ESN,
    Taxation.PATENT: T.TaxationType.PATENT,
})  # fmt: skip
METHODS: Final = MappingProxyType(dict(zip(PaymentMethod, T.PaymentMethod, strict=True)))
OBJECTS: Final = MappingProxyType({
    ItemType.COMMODITY: T.PaymentObject.COMMODITY, ItemType.EXCISE: T.PaymentObject.EXCISE,
    ItemType.WORK: T.PaymentObject.JOB, ItemType.SERVICE: T.PaymentObject.SERVICE,
    ItemType.PAYMENT: T.PaymentObject.PAYMENT, ItemType.OTHER: T.PaymentObject.ANOTHER,
    ItemType.MARKED_EXCISE_NO_CODE: T.PaymentObject.EXCISE_WITHOUT_MARKING,
    ItemType.MARKED_EXCISE: T.PaymentObject.EXCISE_WITH_MARKING,
    ItemType.MARKED_NO_CODE: T.PaymentObject.COMMODITY_WITHOUT_MARKING,
    ItemType.MARKED: T.PaymentObject.COMMODITY_WITH_MARKING,
})  # fmt: skip
UNITS: Final = MappingProxyType({
    Measure.PIECE: T.MeasurementUnit.PIECE, Measure.GRAM: T.MeasurementUnit.GRAM,
    Measure.KILOGRAM: T.MeasurementUnit.KILOGRAM, Measure.TONNE: T.MeasurementUnit.TON,
    Measure.CENTIMETRE: T.MeasurementUnit.CENTIMETER, Measure.DECIMETRE: T.MeasurementUnit.DECIMETER,
    Measure.METRE: T.MeasurementUnit.METER, Measure.MILLILITRE: T.MeasurementUnit.MILLILITER,
    Measure.LITRE: T.MeasurementUnit.LITER, Measure.CUBIC_METRE: T.MeasurementUnit.CUBIC_METER,
    Measure.OTHER: T.MeasurementUnit.OTHER_UNITS,
})  # fmt: skip
ESTIMATED: Final = MappingProxyType({
    MarkingStatus.PIECE_SOLD: T.ItemEstimatedStatus.PIECE_SOLD,
    MarkingStatus.MEASURED_SOLD: T.ItemEstimatedStatus.DRY_FOR_SALE,
    MarkingStatus.PIECE_RETURNED: T.ItemEstimatedStatus.PIECE_RETURN,
    MarkingStatus.MEASURED_RETURNED: T.ItemEstimatedStatus.DRY_RETURN,
    MarkingStatus.UNCHANGED: T.ItemEstimatedStatus.UNCHANGED,
})  # fmt: skip


def tax_type(rate: TaxRate) -> T.TaxType:
    """The ATOL tax name of a rate in force (``LocalProtocolError`` if ATOL has none)."""
    if rate.percent is None:
        return T.TaxType.NONE
    p = int(rate.percent)
    name = f"vat{100 + p}" if rate.calculated else f"vat{p}"
    if rate.percent != p or (rate.calculated and p == 0):
        raise LocalProtocolError(f"Ставку «{rate.label}» нельзя передать в ККТ АТОЛ")
    try:
        return T.TaxType(name)
    except ValueError as exc:
        raise LocalProtocolError(f"Ставку «{rate.label}» нельзя передать в ККТ АТОЛ") from exc


def operator(cashier: Cashier) -> T.Operator:
    return T.Operator(name=cashier.name, vatin=cashier.inn)


def imc_params(
    marking: MarkingCode, *, quantity: Decimal | None = None, unit: Measure | None = None
) -> T.ImcParams:
    """The code as scanned (GS kept), base64; quantity/unit only for a validation request."""
    return T.ImcParams(
        imc=base64.b64encode(marking.code.encode("ascii")).decode("ascii"),
        item_estimated_status=ESTIMATED[marking.planned_status],
        item_quantity=quantity,
        item_units=UNITS[unit] if unit is not None else None,
    )


def position(item: Item, on: dt.date) -> T.Position:
    return T.Position(
        name=item.name,
        price=item.price,
        quantity=item.quantity,
        amount=item.amount,
        measurement_unit=UNITS[item.measure],
        payment_method=METHODS[item.payment_method],
        payment_object=OBJECTS[item.item_type],
        tax=T.Tax(type=tax_type(resolve(item.vat, on))),
        department=item.department if item.department != 1 else None,
        imc_params=imc_params(item.marking) if item.marking is not None else None,
    )


def payments(receipt: Receipt) -> tuple[T.Payment, ...]:
    p = receipt.payments
    pairs = ((T.PaymentType.CASH, p.cash), (T.PaymentType.ELECTRONICALLY, p.electronic),
             (T.PaymentType.PREPAID, p.prepayment), (T.PaymentType.CREDIT, p.credit),
             (T.PaymentType.OTHER, p.counter))  # fmt: skip
    return tuple(T.Payment(type=kind, sum=amount) for kind, amount in pairs if amount)


def _document_fields(receipt: Receipt, on: dt.date, cashier: Cashier | None) -> dict[str, object]:
    who = receipt.cashier or cashier
    if who is None:
        raise LocalProtocolError("Не указан кассир (тег 1021): АТОЛ требует operator.name")
    contact = receipt.customer_contact
    return {
        "taxation_type": TAXATION[receipt.taxation],
        "operator": operator(who),
        "client_info": T.ClientInfo(email_or_phone=contact) if contact else None,
        "items": tuple(position(i, on) for i in receipt.items),
        "payments": payments(receipt),
        "total": receipt.total,
    }


def receipt_task(receipt: Receipt, on: dt.date, cashier: Cashier | None = None) -> T.ReceiptTask:
    """``sell``/``sellReturn``/``buy``/``buyReturn`` for a receipt validated for ``on``."""
    return T.ReceiptTask.model_validate(
        {"type": RECEIPT_TYPES[receipt.sign], **_document_fields(receipt, on, cashier)}
    )


def correction_task(correction: Correction, on: dt.date, cashier: Cashier | None = None) -> T.CorrectionTask:
    kind = (
        T.CorrectionType.INSTRUCTION
        if correction.correction_type is CorrectionType.BY_ORDER
        else T.CorrectionType.SELF
    )
    return T.CorrectionTask.model_validate(
        {
            "type": CORRECTION_TYPES[correction.receipt.sign],
            **_document_fields(correction.receipt, on, cashier),
            "correction_type": kind,
            "correction_base_date": correction.basis.date.strftime("%Y.%m.%d"),
            "correction_base_number": correction.basis.order_number or None,
        }
    )


__all__ = ["correction_task", "imc_params", "operator", "position", "receipt_task", "tax_type"]
