"""UPOS result codes (the first number of the ``e`` file; the process exit status on Windows).

Sources: the reference notes (the devices-and-formats reference, §6) and the code
groups a store integration uses in production (``MarcusStill/PyMASL``
modules/payment_equipment.py). Each code maps to a ``Category`` the driver acts on and a
message for the cashier, in Russian. A code not in the table is ``Category.TERMINAL_ERROR``
with a generic message that still shows the number (support lines ask for it).

Why categories and not bare codes: the gateway only needs to know whether money may have
moved (never for any code here except 0), whether retrying makes sense (customer cancel,
PIN timeout: yes; reconciliation needed: after ``reconcile()``), and what to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Category(StrEnum):
    """What a result code means for the sale."""

    APPROVED = "approved"
    CUSTOMER_CANCELLED = "customer_cancelled"
    TIMEOUT = "timeout"
    RECONCILE_REQUIRED = "reconcile_required"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    NO_BANK_LINK = "no_bank_link"
    PIN_ERROR = "pin_error"
    CARD_BLOCKED = "card_blocked"
    LIMIT_EXCEEDED = "limit_exceeded"
    CARD_ERROR = "card_error"
    BAD_CURRENCY = "bad_currency"
    NOT_FOUND = "not_found"
    TERMINAL_ERROR = "terminal_error"


@dataclass(frozen=True, slots=True)
class ResultCode:
    """One row of the table: the terminal's number, what it means, what the cashier sees."""

    code: int
    category: Category
    message: str

    @property
    def approved(self) -> bool:
        return self.category is Category.APPROVED


APPROVED: Final = 0
CUSTOMER_CANCELLED: Final = 2000
PIN_TIMEOUT: Final = 2002
RECONCILE_REQUIRED: Final = 4134
INSUFFICIENT_FUNDS: Final = 4451
NO_BANK_LINK: Final = 4119
WRONG_PIN: Final = 4117
LIMIT_EXCEEDED: Final = 4113
AMOUNT_MISMATCH: Final = 4140
CARD_BLOCKED: Final = 2004

_GROUPS: Final[list[tuple[Category, tuple[int, ...], str]]] = [
    (Category.APPROVED, (0,), "Операция одобрена"),
    (Category.CUSTOMER_CANCELLED, (2000,), "Операция отменена покупателем"),
    (Category.TIMEOUT, (2002,), "Слишком долгий ввод ПИН-кода или ожидание карты"),
    (Category.RECONCILE_REQUIRED, (4134, 4332), "Требуется сверка итогов, затем повторите операцию"),
    (Category.INSUFFICIENT_FUNDS, (4451, 521), "Недостаточно средств на карте"),
    (Category.NO_BANK_LINK, (4100, 4119, 4139), "Нет связи с банком, повторите через пару минут"),
    (Category.PIN_ERROR, (4117, 4137, 403, 405, 708, 709, 4455), "ПИН-код не введён, введён неверно или заблокирован"),
    (
        Category.CARD_BLOCKED,
        (2004, 2005, 2006, 2007, 2405, 2406, 2407, 572, 574, 579, 705, 706, 707),
        "Карта заблокирована, предложите оплатить другой картой",
    ),
    (Category.LIMIT_EXCEEDED, (4113, 4114, 4150), "Превышен лимит операций по карте"),
    (Category.CARD_ERROR, (444, 507, 584, 585, 4108, 4125, 4148, 4149, 4313, 4314, 4334, 4339, 5002),
     "Операцию невозможно выполнить для этой карты"),
    (Category.BAD_CURRENCY, (4336,), "Неверный код валюты, обратитесь в банк"),
    (Category.NOT_FOUND, (4140,), "Исходная операция не найдена или сумма не совпадает"),
]

TABLE: Final[dict[int, ResultCode]] = {
    code: ResultCode(code, category, message) for category, codes, message in _GROUPS for code in codes
}


def lookup(code: int) -> ResultCode:
    """The table row for ``code``; unknown codes are terminal errors that name the number."""
    row = TABLE.get(code)
    if row is not None:
        return row
    return ResultCode(code, Category.TERMINAL_ERROR, f"Ошибка терминала, код {code}: обратитесь в поддержку банка")


# What the terminal program prints on its console while it waits (CP866), mapped to the
# progress stage the driver reports. Matching is by substring, upper-case.
PROMPTS: Final[dict[str, str]] = {
    "ВСТАВЬТЕ КАРТУ": "waiting_card",
    "ПРИЛОЖИТЕ КАРТУ": "waiting_card",
    "ВВЕДИТЕ ПИН": "pin_entry",
    "СВЯЗЬ С БАНКОМ": "authorising",
    "ИДЕТ ОБМЕН": "authorising",
}


def stage_of(line: str) -> str | None:
    """The progress stage a console line announces, or ``None``."""
    upper = line.upper()
    for prompt, stage in PROMPTS.items():
        if prompt in upper:
            return stage
    return None
