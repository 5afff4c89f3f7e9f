"""FFD 1.2 receipt model: rounding, tax rates by date, validation of every flow."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from protocols.fiscal import (
    Cashier,
    Correction,
    CorrectionBasis,
    CorrectionType,
    Item,
    ItemType,
    MarkingCode,
    Measure,
    PaymentMethod,
    Payments,
    Receipt,
    ReceiptInvalid,
    SettlementSign,
    VatKind,
    kopecks,
    resolve,
)

DAY = dt.date(2026, 3, 2)
KM = "0104600439931256215ABCDEfghijk\x1d93dGVz"


def sale(*items: Item, **payments: D) -> Receipt:
    return Receipt(
        SettlementSign.INCOME, items, Payments(**payments), cashier=Cashier("Иванова А.", "500100732259")
    )


def milk(price: str = "89.90", qty: str = "1") -> Item:
    return Item("Молоко 3,2%", D(qty), D(price), VatKind.REDUCED)


def test_weighed_amount_rounds_half_up_to_kopeck() -> None:
    cheese = Item("Сыр весовой", D("0.734"), D("459.90"), VatKind.REDUCED, measure=Measure.KILOGRAM)
    assert cheese.amount == D("337.57")  # 337.5666
    assert kopecks(cheese.amount) == 33757


def test_vat_general_is_20_before_2026_and_22_after() -> None:
    assert resolve(VatKind.GENERAL, dt.date(2025, 12, 31)).percent == 20
    assert resolve(VatKind.GENERAL, dt.date(2026, 1, 1)).percent == 22
    assert resolve(VatKind.GENERAL, DAY).vat_of(D("122.00")) == D("22.00")
    with pytest.raises(ReceiptInvalid, match="не действует"):
        resolve(VatKind.USN5, dt.date(2024, 6, 1))


def test_valid_sale_with_change() -> None:
    r = sale(milk(), milk("45.50", "2"), cash=D("200.00"), electronic=D("50.00"))
    r.validate(DAY)
    assert r.total == D("180.90") and r.change == D("69.10")


@pytest.mark.parametrize(
    ("payments", "match"),
    [
        ({"cash": D("50.00")}, "меньше итога"),
        ({"electronic": D("100.00")}, "Безналичная оплата"),
        ({"electronic": D("50.00"), "credit": D("50.00")}, "безналичных видов"),
    ],
)
def test_payments_must_cover_total(payments: dict[str, D], match: str) -> None:
    with pytest.raises(ReceiptInvalid, match=match):
        sale(milk(), **payments).validate(DAY)


def test_inputs_reject_floats_fractions_of_kopecks_and_fractional_pieces() -> None:
    with pytest.raises(ReceiptInvalid, match="Decimal"):
        Item("x", D(1), 9.99, VatKind.ZERO)  # type: ignore[arg-type]
    with pytest.raises(ReceiptInvalid, match="копейках"):
        Item("x", D(1), D("9.999"), VatKind.ZERO)
    with pytest.raises(ReceiptInvalid, match="дробным"):
        Item("x", D("1.5"), D("1.00"), VatKind.ZERO)
    with pytest.raises(ReceiptInvalid, match="3 знаков"):
        Item("x", D("1.2345"), D("1.00"), VatKind.ZERO, measure=Measure.KILOGRAM)
    with pytest.raises(ReceiptInvalid, match="ИНН"):
        Cashier("Петров", "123")
    with pytest.raises(ReceiptInvalid, match="e-mail"):
        Receipt(SettlementSign.INCOME, (milk(),), Payments(cash=D(100)), customer_contact="нет")


def test_marked_item_needs_code_and_matching_status() -> None:
    water = Item("Вода", D(1), D("60.00"), VatKind.GENERAL, item_type=ItemType.MARKED)
    with pytest.raises(ReceiptInvalid, match="без кода маркировки"):
        sale(water, cash=D(60)).validate(DAY)
    ok = Item("Вода", D(1), D("60.00"), VatKind.GENERAL, item_type=ItemType.MARKED, marking=MarkingCode(KM))
    sale(ok, cash=D(60)).validate(DAY)
    returned = Receipt(SettlementSign.INCOME_RETURN, (ok,), Payments(cash=D(60)))
    with pytest.raises(ReceiptInvalid, match="для возврата"):
        returned.validate(DAY)
    plain_with_code = Item("Вода", D(1), D("60.00"), VatKind.GENERAL, marking=MarkingCode(KM))
    with pytest.raises(ReceiptInvalid, match="нужен 31"):
        sale(plain_with_code, cash=D(60)).validate(DAY)


def test_prepayment_then_settlement_flow() -> None:
    prepaid = Item(
        "Доставка: торт", D(1), D("1500.00"), VatKind.GENERAL, payment_method=PaymentMethod.FULL_PREPAYMENT
    )
    sale(prepaid, electronic=D("1500.00")).validate(DAY)
    with pytest.raises(ReceiptInvalid, match="не может содержать зачёт"):
        sale(prepaid, prepayment=D("1500.00")).validate(DAY)
    settled = Item("Доставка: торт", D(1), D("1500.00"), VatKind.GENERAL)
    sale(settled, prepayment=D("1500.00")).validate(DAY)
    with pytest.raises(ReceiptInvalid, match="смешивать"):
        sale(prepaid, settled, electronic=D("3000.00")).validate(DAY)


def test_correction_by_order_needs_number() -> None:
    r = sale(milk(), cash=D("89.90"))
    Correction(r, CorrectionType.SELF, CorrectionBasis(dt.date(2026, 2, 1))).validate(DAY)
    with pytest.raises(ReceiptInvalid, match="предписания"):
        Correction(r, CorrectionType.BY_ORDER, CorrectionBasis(dt.date(2026, 2, 1))).validate(DAY)


def test_empty_receipt_rejected() -> None:
    with pytest.raises(ReceiptInvalid, match="нет ни одной"):
        Receipt(SettlementSign.INCOME, (), Payments()).validate(DAY)
