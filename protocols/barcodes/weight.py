"""In-store weight (and piece-count) EAN-13 barcodes, the ones label scales print.

Layout (restricted-circulation EAN-13, prefix set per store)::

    2X  PPPPP  WWWWW  C          default: 2-digit prefix, 5-digit item code, 5-digit value
    │   │      │      └ EAN-13 check digit over the first 12 digits
    │   │      └ grams (weight labels) or pieces (piece-count labels), zero padded
    │   └ the scale's item code (PLU item code), zero padded
    └ prefix: one the store configured (e.g. 20–25 weight, 26 pieces), 2 or 3 digits

Item code and value lengths are configurable (``item_digits + value_digits`` =
``12 - len(prefix)``), e.g. a ``2X PPPPPP WWWW C`` layout for 6-digit item codes with at most
9.999 kg. Russian scales put no inner price-check digit in this layout (unlike some EU
variants), so there is none here. Example: prefix 22, item 123, 1.234 kg → ``2200123012340``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from protocols.barcodes.errors import BarcodeEncodeError, UnknownPrefix
from protocols.barcodes.gtin import Symbology, ean13, validate

GRAM = Decimal("0.001")


class Measure(StrEnum):
    WEIGHT = "weight"
    """The value is grams."""
    PIECES = "pieces"
    """The value is a piece count."""


@dataclass(frozen=True, slots=True)
class WeightBarcodeFormat:
    """One store's layout: which prefixes, how many item-code digits, grams or pieces."""

    prefixes: tuple[str, ...] = ("20", "21", "22", "23", "24", "25", "26", "27", "28", "29")
    item_digits: int = 5
    measure: Measure = Measure.WEIGHT

    def __post_init__(self) -> None:
        if not self.prefixes:
            raise BarcodeEncodeError("Не заданы префиксы весового штрихкода")
        lengths = {len(p) for p in self.prefixes}
        if len(lengths) != 1 or lengths - {2, 3}:
            raise BarcodeEncodeError(f"Префиксы весового штрихкода — 2 или 3 цифры, все одной длины: {self.prefixes}")
        for p in self.prefixes:
            if not p.isascii() or not p.isdigit() or p[0] != "2":
                raise BarcodeEncodeError(f"Префикс весового штрихкода должен начинаться с 2: {p!r}")
        if not 1 <= self.item_digits <= 12 - self.prefix_digits - 1:
            raise BarcodeEncodeError(f"Недопустимая длина кода товара в весовом штрихкоде: {self.item_digits}")

    @classmethod
    def from_range(
        cls, first: int, last: int, *, item_digits: int = 5, measure: Measure = Measure.WEIGHT
    ) -> WeightBarcodeFormat:
        """Prefixes ``first..last`` inclusive, e.g. ``from_range(20, 25)``."""
        width = len(str(first))
        return cls(tuple(str(p).zfill(width) for p in range(first, last + 1)), item_digits, measure)

    @property
    def prefix_digits(self) -> int:
        return len(self.prefixes[0])

    @property
    def value_digits(self) -> int:
        return 12 - self.prefix_digits - self.item_digits

    @property
    def max_value(self) -> int:
        return int(10**self.value_digits) - 1

    def matches(self, code: str) -> bool:
        """True if ``code`` is 13 digits and starts with one of our prefixes (no check-digit test)."""
        return len(code) == 13 and code.isdigit() and code[: self.prefix_digits] in self.prefixes


@dataclass(frozen=True, slots=True)
class WeightBarcode:
    """A decoded (or to-be-printed) weight/piece label barcode."""

    prefix: str
    item_code: int
    value: int
    """Grams for ``Measure.WEIGHT``, pieces for ``Measure.PIECES``."""
    measure: Measure = Measure.WEIGHT

    def __post_init__(self) -> None:
        if isinstance(self.item_code, bool) or not isinstance(self.item_code, int) or self.item_code < 0:
            raise BarcodeEncodeError(f"Код товара должен быть неотрицательным целым: {self.item_code!r}")
        if isinstance(self.value, bool) or not isinstance(self.value, int) or self.value < 0:
            raise BarcodeEncodeError(f"Вес/количество должно быть неотрицательным целым: {self.value!r}")

    @property
    def grams(self) -> int | None:
        return self.value if self.measure is Measure.WEIGHT else None

    @property
    def pieces(self) -> int | None:
        return self.value if self.measure is Measure.PIECES else None

    @property
    def weight_kg(self) -> Decimal | None:
        """Weight in kg with 3 decimals (``None`` for a piece-count label)."""
        if self.measure is not Measure.WEIGHT:
            return None
        return (Decimal(self.value) * GRAM).quantize(GRAM)


def encode_weight_barcode(barcode: WeightBarcode, fmt: WeightBarcodeFormat) -> str:
    """The 13-digit EAN for ``barcode`` in the store's layout ``fmt``."""
    if barcode.prefix not in fmt.prefixes:
        raise BarcodeEncodeError(f"Префикс {barcode.prefix!r} не настроен для магазина: {fmt.prefixes}")
    if barcode.measure is not fmt.measure:
        raise BarcodeEncodeError(f"Формат штрихкода для {fmt.measure.value}, а не {barcode.measure.value}")
    if barcode.item_code >= 10**fmt.item_digits:
        raise BarcodeEncodeError(f"Код товара {barcode.item_code} не помещается в {fmt.item_digits} цифр")
    if barcode.value > fmt.max_value:
        what = "Вес" if fmt.measure is Measure.WEIGHT else "Количество"
        unit = " г" if fmt.measure is Measure.WEIGHT else " шт"
        raise BarcodeEncodeError(f"{what} {barcode.value}{unit} не помещается в {fmt.value_digits} цифр")
    return ean13(
        barcode.prefix + str(barcode.item_code).zfill(fmt.item_digits) + str(barcode.value).zfill(fmt.value_digits)
    )


def weight_to_grams(kg: Decimal) -> int:
    """Kilograms (``Decimal``, at most 3 decimals) to whole grams for a label."""
    if not isinstance(kg, Decimal) or not kg.is_finite() or kg < 0:
        raise BarcodeEncodeError(f"Вес должен быть неотрицательным Decimal в кг: {kg!r}")
    grams = kg * 1000
    if grams != grams.to_integral_value():
        raise BarcodeEncodeError(f"Вес {kg} кг точнее грамма: округлите до 3 знаков")
    return int(grams)


def decode_weight_barcode(code: str, formats: WeightBarcodeFormat | tuple[WeightBarcodeFormat, ...]) -> WeightBarcode:
    """Decode ``code`` with the first format whose prefixes match it.

    Raises ``BadCheckDigit``/``BadLength``/``BadCharacters`` for a broken EAN-13 and
    ``UnknownPrefix`` if no configured format has its prefix.
    """
    validate(code, Symbology.EAN13)
    candidates = formats if isinstance(formats, tuple) else (formats,)
    for fmt in candidates:
        if fmt.matches(code):
            p, i = fmt.prefix_digits, fmt.item_digits
            return WeightBarcode(code[:p], int(code[p : p + i]), int(code[p + i : 12]), fmt.measure)
    raise UnknownPrefix(f"Префикс штрихкода {code[:3]!r} не настроен как весовой в магазине", code)
