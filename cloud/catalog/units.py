"""Exact conversions between the API's decimals and the stored integers.

Quantities: thousandths of the base unit (``qty_m``). Money: kopecks (``kop``). Rounding is
ROUND_HALF_UP (the way a Russian accountant and 1C round), applied once, at the boundary.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

MILLI = Decimal("0.001")
KOPECK = Decimal("0.01")


def to_milli(value: Decimal | int | str) -> int:
    """Quantity → thousandths, rounded half up to 3 decimals."""
    return int((Decimal(value) * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_milli(value: int) -> Decimal:
    return (Decimal(value) / 1000).quantize(MILLI)


def to_kop(value: Decimal | int | str) -> int:
    """Money → kopecks, rounded half up."""
    return int((Decimal(value) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_kop(value: int) -> Decimal:
    return (Decimal(value) / 100).quantize(KOPECK)


def div_round(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half away from zero, in integers (no float anywhere)."""
    if denominator == 0:
        raise ZeroDivisionError("div_round by zero")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    q, r = divmod(abs(numerator), denominator)
    if 2 * r >= denominator:
        q += 1
    return q if numerator >= 0 else -q


def mul_div(value: int, num: int, den: int) -> int:
    """``value * num / den`` rounded half away from zero (a pro-rata share of kopecks)."""
    return div_round(value * num, den)


def spread(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` kopecks in proportion to ``weights`` so the parts add up exactly.

    Largest-remainder method: each part is floored, the leftover kopecks go to the largest
    remainders (earlier lines win ties). All-zero weights spread evenly.
    """
    if not weights:
        return []
    if any(w < 0 for w in weights):
        raise ValueError("negative weight")
    if sum(weights) == 0:
        weights = [1] * len(weights)
    den = sum(weights)
    sign = -1 if total < 0 else 1
    amount = abs(total)
    parts = [amount * w // den for w in weights]
    rest = amount - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % den), i))
    for i in order[:rest]:
        parts[i] += 1
    return [sign * p for p in parts]
