"""FFD 1.2 receipts shared by every fiscal-register driver: typed, frozen, validated.

Construction checks each part on its own (a negative price, a float, a 129-character name
fail at once); ``Receipt.validate(on)`` checks the whole against the date's tax rates before
anything is sent: totals, payments covering the total, marking, prepayment flows.
Money is ``Decimal`` exact to the kopeck (``kopecks()`` gives the wire integer); quantities
are ``Decimal`` with at most 3 decimals.

Tags: 1054 settlement sign, 1059 item, 1030 name, 1023 quantity, 2108 measure, 1079 price,
1043 amount, 1199 VAT, 1212 item type, 1214 payment method, 2000 marking code, 2003 planned
status, 2106 check result, 1031/1081/1215/1216/1217 payments, 1055 taxation, 1008 customer
contact, 1021/1203 cashier, 1173/1174/1178/1179 correction.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import IntEnum

from protocols.fiscal.errors import ReceiptInvalid
from protocols.fiscal.tax import TaxRate, VatKind, resolve

KOPECK = Decimal("0.01")
GRAM = Decimal("0.001")
ZERO = Decimal("0.00")


class SettlementSign(IntEnum):
    """1054."""

    INCOME = 1
    INCOME_RETURN = 2
    EXPENSE = 3
    EXPENSE_RETURN = 4


class PaymentMethod(IntEnum):
    """1214."""

    FULL_PREPAYMENT = 1
    PREPAYMENT = 2
    ADVANCE = 3
    FULL_SETTLEMENT = 4
    PARTIAL_SETTLEMENT_AND_CREDIT = 5
    CREDIT_TRANSFER = 6
    CREDIT_PAYMENT = 7


class ItemType(IntEnum):
    """1212 (subset used in food retail; the tag allows 1..33)."""

    COMMODITY = 1
    EXCISE = 2
    WORK = 3
    SERVICE = 4
    PAYMENT = 10
    OTHER = 13
    MARKED_EXCISE_NO_CODE = 30
    MARKED_EXCISE = 31
    MARKED_NO_CODE = 32
    MARKED = 33


MARKED_TYPES = frozenset({ItemType.MARKED_EXCISE, ItemType.MARKED})
"""Item types that need a marking code (2000)."""


class Measure(IntEnum):
    """2108."""

    PIECE = 0
    GRAM = 10
    KILOGRAM = 11
    TONNE = 12
    CENTIMETRE = 20
    DECIMETRE = 21
    METRE = 22
    MILLILITRE = 40
    LITRE = 41
    CUBIC_METRE = 42
    OTHER = 255


class Taxation(IntEnum):
    """1055."""

    OSN = 1
    USN_INCOME = 2
    USN_INCOME_EXPENSE = 4
    ESHN = 16
    PATENT = 32


class MarkingStatus(IntEnum):
    """2003 planned status."""

    PIECE_SOLD = 1
    MEASURED_SOLD = 2
    PIECE_RETURNED = 3
    MEASURED_RETURNED = 4
    UNCHANGED = 255


class CorrectionType(IntEnum):
    """1173."""

    SELF = 0
    BY_ORDER = 1


def _decimal(value: object, what: str, where: str) -> Decimal:
    if isinstance(value, bool | float) or not isinstance(value, Decimal | int | str):
        raise ReceiptInvalid(
            f"{what}: нужно точное десятичное число (Decimal), а не {type(value).__name__}", where
        )
    try:
        d = Decimal(value)
    except InvalidOperation as exc:
        raise ReceiptInvalid(f"{what}: «{value}» — не число", where) from exc
    if not d.is_finite():
        raise ReceiptInvalid(f"{what}: недопустимое значение {value}", where)
    return d


def money(value: object, what: str = "Сумма", where: str = "") -> Decimal:
    """An exact kopeck amount ≥ 0 (more than 2 decimals is an error, not a silent rounding)."""
    d = _decimal(value, what, where)
    if d < 0:
        raise ReceiptInvalid(f"{what} не может быть отрицательной: {d}", where)
    if d != d.quantize(KOPECK):
        raise ReceiptInvalid(f"{what} должна быть в копейках (не более 2 знаков): {d}", where)
    return d.quantize(KOPECK)


def kopecks(amount: Decimal) -> int:
    """The wire integer of an exact kopeck amount."""
    return int((amount.quantize(KOPECK) * 100).to_integral_value())


def from_kopecks(value: int) -> Decimal:
    return (Decimal(value) / 100).quantize(KOPECK)


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+\d{11,15}$")
_INN = re.compile(r"^(\d{10}|\d{12})$")


@dataclass(frozen=True)
class MarkingCode:
    """A Честный знак code as scanned (GS kept), with the 2003 status and the 2106 result."""

    code: str
    planned_status: MarkingStatus = MarkingStatus.PIECE_SOLD
    check_result: int | None = None

    def __post_init__(self) -> None:
        if not self.code or len(self.code) > 255 or not self.code.isascii():
            raise ReceiptInvalid("Код маркировки пуст, длиннее 255 символов или не ASCII", "marking.code")
        if self.check_result is not None and not 0 <= self.check_result <= 0xFF:
            raise ReceiptInvalid("Результат проверки КМ (2106) вне 0..255", "marking.check_result")


@dataclass(frozen=True)
class Item:
    """1059: one line. ``amount`` = quantity × price rounded half-up to the kopeck."""

    name: str
    quantity: Decimal
    price: Decimal
    vat: VatKind
    measure: Measure = Measure.PIECE
    item_type: ItemType = ItemType.COMMODITY
    payment_method: PaymentMethod = PaymentMethod.FULL_SETTLEMENT
    marking: MarkingCode | None = None
    department: int = 1

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > 128:
            raise ReceiptInvalid("Наименование товара должно быть от 1 до 128 символов", "name")
        q = _decimal(self.quantity, "Количество", "quantity")
        if q <= 0:
            raise ReceiptInvalid(f"Количество должно быть больше нуля: {q}", "quantity")
        if q != q.quantize(GRAM):
            raise ReceiptInvalid(f"Количество — не более 3 знаков после запятой: {q}", "quantity")
        if self.measure is Measure.PIECE and q != q.to_integral_value():
            raise ReceiptInvalid(
                f"Штучный товар «{self.name}» не продаётся дробным количеством {q}", "quantity"
            )
        object.__setattr__(self, "quantity", q)
        object.__setattr__(self, "price", money(self.price, "Цена", "price"))
        if not 0 <= self.department <= 16:
            raise ReceiptInvalid("Номер отдела 0..16", "department")

    @property
    def amount(self) -> Decimal:
        return (self.quantity * self.price).quantize(KOPECK, ROUND_HALF_UP)


@dataclass(frozen=True)
class Payments:
    """1031 cash, 1081 electronic, 1215 prepayment offset, 1216 credit, 1217 counter provision."""

    cash: Decimal = ZERO
    electronic: Decimal = ZERO
    prepayment: Decimal = ZERO
    credit: Decimal = ZERO
    counter: Decimal = ZERO

    def __post_init__(self) -> None:
        names = {"cash": "наличными", "electronic": "безналичными", "prepayment": "зачётом предоплаты",
                 "credit": "в кредит", "counter": "встречным предоставлением"}  # fmt: skip
        for attr, ru in names.items():
            object.__setattr__(self, attr, money(getattr(self, attr), f"Оплата {ru}", f"payments.{attr}"))

    @property
    def non_cash(self) -> Decimal:
        return self.electronic + self.prepayment + self.credit + self.counter

    @property
    def total(self) -> Decimal:
        return self.cash + self.non_cash


@dataclass(frozen=True)
class Cashier:
    """1021 name, 1203 INN."""

    name: str
    inn: str | None = None

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > 64:
            raise ReceiptInvalid("ФИО кассира должно быть от 1 до 64 символов", "cashier.name")
        if self.inn is not None and not _INN.match(self.inn):
            raise ReceiptInvalid(
                f"ИНН кассира должен состоять из 10 или 12 цифр: {self.inn!r}", "cashier.inn"
            )


@dataclass(frozen=True)
class Receipt:
    """A cash receipt (кассовый чек) to register."""

    sign: SettlementSign
    items: tuple[Item, ...]
    payments: Payments
    taxation: Taxation = Taxation.OSN
    cashier: Cashier | None = None
    customer_contact: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))
        if self.customer_contact is not None and not (
            _EMAIL.match(self.customer_contact) or _PHONE.match(self.customer_contact)
        ):
            raise ReceiptInvalid(
                f"Контакт покупателя (1008) — e-mail или телефон в виде +7…: {self.customer_contact!r}",
                "customer_contact",
            )

    @property
    def total(self) -> Decimal:
        return sum((i.amount for i in self.items), ZERO)

    @property
    def change(self) -> Decimal:
        return max(self.payments.total - self.total, ZERO)

    def rates(self, on: dt.date) -> dict[VatKind, TaxRate]:
        return {i.vat: resolve(i.vat, on) for i in self.items}

    def vat_totals(self, on: dt.date) -> dict[VatKind, Decimal]:
        """VAT amount per kind (sum of per-item VAT, each rounded to the kopeck)."""
        out: dict[VatKind, Decimal] = {}
        for item in self.items:
            rate = resolve(item.vat, on)
            out[item.vat] = out.get(item.vat, ZERO) + rate.vat_of(item.amount)
        return out

    def validate(self, on: dt.date) -> None:
        """Raise ``ReceiptInvalid`` (Russian message) unless the receipt may be registered."""
        if not self.items:
            raise ReceiptInvalid("В чеке нет ни одной позиции", "items")
        if len(self.items) > 100:
            raise ReceiptInvalid("Не более 100 позиций в чеке", "items")
        self.rates(on)
        total = self.total
        if total <= 0:
            raise ReceiptInvalid("Итог чека должен быть больше нуля", "items")
        p = self.payments
        if p.electronic > total:
            raise ReceiptInvalid(
                f"Безналичная оплата {p.electronic} больше итога чека {total}", "payments.electronic"
            )
        if p.non_cash > total:
            raise ReceiptInvalid(
                f"Сумма безналичных видов оплаты {p.non_cash} больше итога чека {total}", "payments"
            )
        if p.total < total:
            raise ReceiptInvalid(f"Сумма всех видов оплаты {p.total} меньше итога чека {total}", "payments")
        for n, item in enumerate(self.items):
            self._check_marking(n, item)
        self._check_prepayment_flow()

    def _check_marking(self, n: int, item: Item) -> None:
        where = f"items[{n}].marking"
        if item.item_type in MARKED_TYPES and item.marking is None:
            raise ReceiptInvalid(f"Маркированный товар «{item.name}» без кода маркировки", where)
        if item.marking is None:
            return
        if item.item_type not in MARKED_TYPES:
            raise ReceiptInvalid(
                f"Код маркировки у товара «{item.name}» с признаком предмета расчёта {int(item.item_type)}: "
                "нужен 31 (АТМ) или 33 (ТМ)",
                where,
            )
        status = item.marking.planned_status
        selling = self.sign in (SettlementSign.INCOME, SettlementSign.EXPENSE_RETURN)
        if selling and status not in (MarkingStatus.PIECE_SOLD, MarkingStatus.MEASURED_SOLD):
            raise ReceiptInvalid(f"Планируемый статус КМ {int(status)} не подходит для продажи", where)
        if not selling and status not in (MarkingStatus.PIECE_RETURNED, MarkingStatus.MEASURED_RETURNED):
            raise ReceiptInvalid(f"Планируемый статус КМ {int(status)} не подходит для возврата", where)
        measured = status in (MarkingStatus.MEASURED_SOLD, MarkingStatus.MEASURED_RETURNED)
        if measured == (item.measure is Measure.PIECE):
            raise ReceiptInvalid("Статус КМ «мерный товар» требует меры количества, отличной от штук", where)

    def _check_prepayment_flow(self) -> None:
        methods = {i.payment_method for i in self.items}
        advance = {PaymentMethod.FULL_PREPAYMENT, PaymentMethod.PREPAYMENT, PaymentMethod.ADVANCE}
        if methods & advance and self.payments.prepayment:
            raise ReceiptInvalid(
                "Чек предоплаты (1214 = 1, 2 или 3) не может содержать зачёт предоплаты (1215)",
                "payments.prepayment",
            )
        if methods & advance and methods - advance:
            raise ReceiptInvalid("Нельзя смешивать в одном чеке предоплату и расчёт", "items")
        if self.payments.prepayment and not methods <= {
            PaymentMethod.FULL_SETTLEMENT,
            PaymentMethod.PARTIAL_SETTLEMENT_AND_CREDIT,
        }:
            raise ReceiptInvalid(
                "Зачёт предоплаты (1215) допустим только в чеке полного расчёта (1214 = 4 или 5)", "items"
            )
        if self.payments.credit and not methods & {
            PaymentMethod.PARTIAL_SETTLEMENT_AND_CREDIT,
            PaymentMethod.CREDIT_TRANSFER,
        }:
            raise ReceiptInvalid("Оплата в кредит (1216) требует способа расчёта 5 или 6", "payments.credit")


@dataclass(frozen=True)
class CorrectionBasis:
    """1174: 1178 date of the corrected settlement, 1179 number of the tax authority's order."""

    date: dt.date
    order_number: str = ""

    def __post_init__(self) -> None:
        if len(self.order_number) > 32:
            raise ReceiptInvalid("Номер предписания (1179) не длиннее 32 символов", "basis.order_number")


@dataclass(frozen=True)
class Correction:
    """A correction receipt (чек коррекции, FFD 1.2): a receipt plus 1173 and 1174."""

    receipt: Receipt
    correction_type: CorrectionType
    basis: CorrectionBasis

    def validate(self, on: dt.date) -> None:
        self.receipt.validate(on)
        if self.correction_type is CorrectionType.BY_ORDER and not self.basis.order_number:
            raise ReceiptInvalid("Коррекция по предписанию требует номера предписания (1179)", "basis")
        if self.basis.date > on:
            raise ReceiptInvalid("Дата корректируемого расчёта (1178) не может быть в будущем", "basis.date")


@dataclass(frozen=True)
class FiscalDocument:
    """What the register returns for a registered document."""

    fd_number: int  # 1040
    fiscal_sign: int  # 1077 (ФПД, 32 bits)
    issued_at: dt.datetime  # 1012, the register's local time
    kind: str = "receipt"  # receipt, correction, shift_open, shift_close, other
    sign: SettlementSign | None = None  # 1054
    total: Decimal | None = None  # 1020
    shift_number: int | None = None  # 1038
    receipt_number: int | None = None  # 1042
    fn_number: str | None = None  # 1041
    extra: dict[str, str] = field(default_factory=dict)
