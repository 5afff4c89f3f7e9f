"""VAT and USN-VAT rates as data with effective dates (tag 1199), never constants in code.

The general VAT rate is 20 % until 2025-12-31 and 22 % from 2026-01-01 (Federal law
425-FZ of 28.11.2025); the FFD keeps 1199 value 1 (and 3 for the calculated rate) for the
general rate, relabelled [K: verify against the current FNS format order]. The USN VAT rates
5 % and 7 % (and 5/105, 7/107) exist from 2025-01-01 (1199 values 7..10 [K]).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from protocols.fiscal.errors import ReceiptInvalid


class VatKind(StrEnum):
    """What an item's VAT is, independent of the date: resolved to a ``TaxRate`` per date."""

    GENERAL = "vat_general"  # 20 % → 22 % from 2026
    GENERAL_CALCULATED = "vat_general_calc"  # 20/120 → 22/122
    REDUCED = "vat10"
    REDUCED_CALCULATED = "vat10_calc"  # 10/110
    ZERO = "vat0"
    NONE = "none"
    USN5 = "vat5"
    USN5_CALCULATED = "vat5_calc"
    USN7 = "vat7"
    USN7_CALCULATED = "vat7_calc"


@dataclass(frozen=True)
class TaxRate:
    """One rate in force between two dates. ``percent`` None: no VAT; ``calculated``: the
    amount already includes VAT, rate/(100+rate)."""

    kind: VatKind
    tag_1199: int
    percent: Decimal | None
    label: str
    valid_from: dt.date
    valid_to: dt.date | None = None
    calculated: bool = False

    def in_force(self, on: dt.date) -> bool:
        return self.valid_from <= on and (self.valid_to is None or on <= self.valid_to)

    def vat_of(self, amount: Decimal) -> Decimal:
        """VAT contained in a gross ``amount`` (kopecks, half-up)."""
        if not self.percent:
            return Decimal("0.00")
        return (amount * self.percent / (Decimal(100) + self.percent)).quantize(
            Decimal("0.01"), "ROUND_HALF_UP"
        )


_EPOCH = dt.date(2000, 1, 1)
_END_2025 = dt.date(2025, 12, 31)
_Y2026 = dt.date(2026, 1, 1)
_Y2025 = dt.date(2025, 1, 1)
D = Decimal

TAX_RATES: tuple[TaxRate, ...] = (
    TaxRate(VatKind.GENERAL, 1, D(20), "НДС 20%", _EPOCH, _END_2025),
    TaxRate(VatKind.GENERAL, 1, D(22), "НДС 22%", _Y2026),
    TaxRate(VatKind.GENERAL_CALCULATED, 3, D(20), "НДС 20/120", _EPOCH, _END_2025, calculated=True),
    TaxRate(VatKind.GENERAL_CALCULATED, 3, D(22), "НДС 22/122", _Y2026, calculated=True),
    TaxRate(VatKind.REDUCED, 2, D(10), "НДС 10%", _EPOCH),
    TaxRate(VatKind.REDUCED_CALCULATED, 4, D(10), "НДС 10/110", _EPOCH, calculated=True),
    TaxRate(VatKind.ZERO, 5, D(0), "НДС 0%", _EPOCH),
    TaxRate(VatKind.NONE, 6, None, "Без НДС", _EPOCH),
    TaxRate(VatKind.USN5, 7, D(5), "НДС 5%", _Y2025),
    TaxRate(VatKind.USN7, 8, D(7), "НДС 7%", _Y2025),
    TaxRate(VatKind.USN5_CALCULATED, 9, D(5), "НДС 5/105", _Y2025, calculated=True),
    TaxRate(VatKind.USN7_CALCULATED, 10, D(7), "НДС 7/107", _Y2025, calculated=True),
)


def resolve(kind: VatKind, on: dt.date, rates: tuple[TaxRate, ...] = TAX_RATES) -> TaxRate:
    """The rate of ``kind`` in force on ``on``; ``ReceiptInvalid`` if none."""
    for rate in rates:
        if rate.kind is kind and rate.in_force(on):
            return rate
    raise ReceiptInvalid(f"Ставка НДС «{kind.value}» не действует на {on:%d.%m.%Y}", "vat")
