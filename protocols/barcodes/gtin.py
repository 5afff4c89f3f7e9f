"""GS1 identification keys with a mod-10 check digit: EAN-13, EAN-8, UPC-A, ITF-14 (GTIN-14)
and SSCC.

The check digit (GS1 General Specifications §7.9): weights 3, 1, 3, 1… from the *right*
of the payload (the digit next to the check digit has weight 3); check =
``(10 - sum % 10) % 10``. For EAN-13 this is the familiar "1, 3, 1, 3… from the left".

Every key normalises to a 14-digit GTIN (``gtin14``) by left zero padding, the form AI 01
and the fiscal register's product codes carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocols.barcodes.errors import BadCharacters, BadCheckDigit, BadLength, BarcodeEncodeError


class Symbology(StrEnum):
    EAN13 = "EAN-13"
    EAN8 = "EAN-8"
    UPCA = "UPC-A"
    ITF14 = "ITF-14"
    SSCC = "SSCC-18"


LENGTHS: dict[Symbology, int] = {
    Symbology.EAN8: 8,
    Symbology.UPCA: 12,
    Symbology.EAN13: 13,
    Symbology.ITF14: 14,
    Symbology.SSCC: 18,
}

_BY_LENGTH = {length: sym for sym, length in LENGTHS.items()}


def _require_digits(value: str, what: str) -> None:
    if not value.isascii() or not value.isdigit():
        raise BadCharacters(f"{what} должен состоять только из цифр: {value!r}", value)


def check_digit(payload: str) -> int:
    """The GS1 mod-10 check digit of ``payload`` (every digit but the check digit)."""
    _require_digits(payload, "Код")
    total = 0
    for i, ch in enumerate(reversed(payload)):
        total += int(ch) * (3 if i % 2 == 0 else 1)
    return (10 - total % 10) % 10


def with_check_digit(payload: str) -> str:
    """``payload`` followed by its check digit."""
    return payload + str(check_digit(payload))


def has_valid_check_digit(code: str) -> bool:
    """True if ``code`` is all digits, at least 2 long, and its last digit checks."""
    if len(code) < 2 or not code.isascii() or not code.isdigit():
        return False
    return check_digit(code[:-1]) == int(code[-1])


@dataclass(frozen=True, slots=True)
class Gtin:
    """A validated GS1 key as scanned (``code``) and its symbology."""

    code: str
    symbology: Symbology

    def __post_init__(self) -> None:
        validate(self.code, self.symbology)

    @property
    def gtin14(self) -> str:
        """The 14-digit form (SSCC has none: it is not a trade item; returns the code)."""
        if self.symbology is Symbology.SSCC:
            return self.code
        return self.code.rjust(14, "0")

    @property
    def restricted_circulation(self) -> bool:
        """EAN-13 prefixes 20–29 (and EAN-8 prefix 2): in-store numbers such as weight labels."""
        if self.symbology is Symbology.EAN13:
            return self.code[0] == "2"
        if self.symbology is Symbology.EAN8:
            return self.code[0] == "2"
        return False


def validate(code: str, symbology: Symbology) -> str:
    """Return ``code`` if it is a valid ``symbology`` key, else raise ``InvalidBarcode``."""
    name = symbology.value
    _require_digits(code, name)
    if len(code) != LENGTHS[symbology]:
        raise BadLength(f"{name} должен содержать {LENGTHS[symbology]} цифр, а не {len(code)}: {code!r}", code)
    expected = check_digit(code[:-1])
    if int(code[-1]) != expected:
        raise BadCheckDigit(
            f"Неверная контрольная цифра {name} {code!r}: {code[-1]}, должна быть {expected}", code
        )
    return code


def parse_gtin(code: str) -> Gtin:
    """EAN-8, UPC-A, EAN-13 or ITF-14/GTIN-14 by length; ``InvalidBarcode`` otherwise."""
    _require_digits(code, "Штрихкод")
    symbology = _BY_LENGTH.get(len(code))
    if symbology is None or symbology is Symbology.SSCC:
        raise BadLength(f"Штрихкод товара содержит 8, 12, 13 или 14 цифр, а не {len(code)}: {code!r}", code)
    return Gtin(validate(code, symbology), symbology)


def validate_gtin14(code: str) -> str:
    """A 14-digit GTIN as carried by AI 01; returns it."""
    return validate(code, Symbology.ITF14)


def ean13(payload12: str) -> str:
    """Build an EAN-13 from its first 12 digits (``BarcodeEncodeError`` if they are not)."""
    if len(payload12) != 12 or not payload12.isascii() or not payload12.isdigit():
        raise BarcodeEncodeError(f"Для EAN-13 нужно 12 цифр без контрольной: {payload12!r}")
    return with_check_digit(payload12)
