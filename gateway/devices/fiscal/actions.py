"""Argument schemas of fiscal actions, their translation to the FFD 1.2 model, and documents as JSON.

Money on the bus is **integer kopecks** (``"price": 8990`` is 89.90 ₽), as everywhere on the
store bus: an integer cannot carry a float's 0.1 error nor a third decimal. Quantities are
decimal strings with at most 3 decimals (``"0.734"`` kg) or integers (pieces). A float anywhere
is refused. The pydantic schemas check the shape (unknown keys are refused: a typo is an error);
``protocols.fiscal`` then checks the receipt itself and answers in Russian (``Сумма всех видов
оплаты 100.00 меньше итога чека 179.80``), on the dispatcher thread, before the register is
touched.

A fiscal document leaves the gateway as data (``document_json``): FD number (tag 1040), fiscal
sign (1077), shift (1038), receipt number in the shift (1042), FN number (1041), date and time
(1012), settlement sign (1054), total (1020) in kopecks, and the items and payments sent.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr, StrictInt, StrictStr

from protocols.fiscal import (
    Cashier,
    Correction,
    CorrectionBasis,
    CorrectionType,
    FiscalDocument,
    Item,
    ItemType,
    MarkingCode,
    MarkingStatus,
    Measure,
    PaymentMethod,
    Payments,
    Receipt,
    ReceiptInvalid,
    SettlementSign,
    Taxation,
    VatKind,
    from_kopecks,
    kopecks,
)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CashierArgs(_Args):
    """1021 / 1203."""

    name: StrictStr
    inn: StrictStr | None = None

    def build(self) -> Cashier:
        return Cashier(self.name, self.inn)


class MarkingArgs(_Args):
    """2000 code as scanned (GS kept) and 2003 planned status."""

    code: StrictStr
    planned_status: MarkingStatus = MarkingStatus.PIECE_SOLD


class ItemArgs(_Args):
    """One line: ``price`` in kopecks, ``quantity`` a decimal string or an integer."""

    name: StrictStr
    quantity: StrictStr | StrictInt
    price: StrictInt
    vat: VatKind
    measure: Measure = Measure.PIECE
    item_type: ItemType = ItemType.COMMODITY
    payment_method: PaymentMethod = PaymentMethod.FULL_SETTLEMENT
    marking: MarkingArgs | None = None
    department: StrictInt = 1


class PaymentsArgs(_Args):
    """Kopecks per kind: 1031 cash, 1081 electronic, 1215 prepayment, 1216 credit, 1217 counter."""

    cash: StrictInt = 0
    electronic: StrictInt = 0
    prepayment: StrictInt = 0
    credit: StrictInt = 0
    counter: StrictInt = 0


class ReceiptArgs(_Args):
    """A cash receipt. ``validated`` holds the model built by ``build`` (set by the binding)."""

    items: list[ItemArgs]
    payments: PaymentsArgs
    taxation: Taxation = Taxation.OSN
    cashier: CashierArgs | None = None
    customer_contact: StrictStr | None = None
    sign: SettlementSign = SettlementSign.INCOME

    _receipt: Receipt | None = PrivateAttr(default=None)
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    def build(self) -> Receipt:
        """The ``protocols.fiscal`` receipt; ``ReceiptInvalid`` (Russian) when a part is wrong."""
        items = tuple(_item(n, i) for n, i in enumerate(self.items))
        p = self.payments
        payments = Payments(
            cash=_rub(p.cash, "payments.cash"), electronic=_rub(p.electronic, "payments.electronic"),
            prepayment=_rub(p.prepayment, "payments.prepayment"), credit=_rub(p.credit, "payments.credit"),
            counter=_rub(p.counter, "payments.counter"),
        )
        cashier = self.cashier.build() if self.cashier else None
        return Receipt(self.sign, items, payments, self.taxation, cashier, self.customer_contact)

    @property
    def receipt(self) -> Receipt:
        assert self._receipt is not None, "validated by the binding before it runs"
        return self._receipt


class SellArgs(ReceiptArgs):
    """``sell``: приход (1) or расход (3)."""

    sign: Literal[SettlementSign.INCOME, SettlementSign.EXPENSE] = SettlementSign.INCOME


class RefundArgs(ReceiptArgs):
    """``refund``: возврат прихода (2) or возврат расхода (4)."""

    sign: Literal[SettlementSign.INCOME_RETURN, SettlementSign.EXPENSE_RETURN] = SettlementSign.INCOME_RETURN


class CorrectArgs(ReceiptArgs):
    """``correct``: a correction receipt (1173 type, 1178 date, 1179 order number)."""

    sign: Literal[SettlementSign.INCOME, SettlementSign.EXPENSE] = SettlementSign.INCOME
    correction_type: CorrectionType = CorrectionType.SELF
    basis_date: dt.date
    order_number: StrictStr = ""

    _correction: Correction | None = PrivateAttr(default=None)

    def build_correction(self) -> Correction:
        return Correction(self.build(), self.correction_type, CorrectionBasis(self.basis_date, self.order_number))

    @property
    def correction(self) -> Correction:
        assert self._correction is not None
        return self._correction


class ShiftArgs(_Args):
    """``open_shift`` / ``close_shift``: the cashier printed on the report."""

    cashier: CashierArgs

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)


class MarkingCheckArgs(_Args):
    """``check_marking_code``: ask the register (and the OISM through it) about one code."""

    code: StrictStr
    planned_status: MarkingStatus = MarkingStatus.PIECE_SOLD


def _rub(kop: int, where: str) -> Decimal:
    if kop < 0:
        raise ReceiptInvalid(f"Сумма не может быть отрицательной: {kop} коп.", where)
    return from_kopecks(kop)


def _item(n: int, args: ItemArgs) -> Item:
    try:
        quantity = Decimal(args.quantity)
    except InvalidOperation as exc:
        raise ReceiptInvalid(f"Количество: «{args.quantity}» — не число", f"items[{n}].quantity") from exc
    try:
        marking = MarkingCode(args.marking.code, args.marking.planned_status) if args.marking else None
        return Item(
            args.name, quantity, _rub(args.price, f"items[{n}].price"), args.vat, args.measure, args.item_type,
            args.payment_method, marking, args.department,
        )
    except ReceiptInvalid as exc:
        field = exc.field if exc.field.startswith("items[") else f"items[{n}].{exc.field}".rstrip(".")
        raise ReceiptInvalid(exc.message, field) from exc


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    """Items and payments as sent (kopecks, quantities as decimal strings)."""
    p = receipt.payments
    return {
        "items": [
            {
                "name": i.name, "quantity": str(i.quantity), "price": kopecks(i.price), "amount": kopecks(i.amount),
                "vat": i.vat.value, "measure": int(i.measure), "item_type": int(i.item_type),
                "payment_method": int(i.payment_method), "marked": i.marking is not None,
            }
            for i in receipt.items
        ],
        "payments": {
            "cash": kopecks(p.cash), "electronic": kopecks(p.electronic), "prepayment": kopecks(p.prepayment),
            "credit": kopecks(p.credit), "counter": kopecks(p.counter),
        },
        "change": kopecks(receipt.change),
        "taxation": int(receipt.taxation),
    }


def document_json(doc: FiscalDocument, receipt: Receipt | None = None) -> dict[str, Any]:
    """A fiscal document as bus data (see the module doc for the tags)."""
    out: dict[str, Any] = {
        "kind": doc.kind,
        "fd_number": doc.fd_number,
        "fiscal_sign": doc.fiscal_sign,
        "shift_number": doc.shift_number,
        "receipt_number": doc.receipt_number,
        "fn_number": doc.fn_number,
        "issued_at": doc.issued_at.isoformat(),
        "sign": int(doc.sign) if doc.sign is not None else None,
        "total": kopecks(doc.total) if doc.total is not None else None,
    }
    if receipt is not None:
        out.update(receipt_json(receipt))
    return out


def marking_json(code: str, valid: bool, online: bool, check_result: int, code_type: int) -> dict[str, Any]:
    return {"code": code, "valid": valid, "checked_online": online, "check_result": check_result,
            "code_type": code_type}
