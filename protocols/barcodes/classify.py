"""``classify(raw)``: what did the scanner just read?

Order matters and is the one a till uses: a marking code (it carries a GTIN too, but must be
sold with its code), an aggregate SSCC, a weight/piece label (an EAN-13 with one of the
store's prefixes), a product GTIN (EAN-13/EAN-8/UPC-A/ITF-14), else ``UnknownBarcode`` with
the reason. ``classify`` never raises on input: every outcome is a value.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.barcodes.errors import InvalidBarcode
from protocols.barcodes.gtin import Gtin, parse_gtin
from protocols.barcodes.marking import GS, AggregateCode, MarkingCode, normalize_scan, parse_marking
from protocols.barcodes.weight import WeightBarcode, WeightBarcodeFormat, decode_weight_barcode

DEFAULT_WEIGHT_FORMATS: tuple[WeightBarcodeFormat, ...] = (WeightBarcodeFormat(),)
"""Every 20–29 prefix as grams with a 5-digit item code; stores override this."""


@dataclass(frozen=True, slots=True)
class ProductBarcode:
    """A trade item's GTIN (not a weight label)."""

    raw: str
    gtin: Gtin


@dataclass(frozen=True, slots=True)
class WeightLabel:
    """A weight or piece-count label with the store's layout applied."""

    raw: str
    barcode: WeightBarcode


@dataclass(frozen=True, slots=True)
class UnknownBarcode:
    """Not a code we know; ``reason`` says why (bad check digit, unknown shape…)."""

    raw: str
    reason: str


ParsedBarcode = ProductBarcode | WeightLabel | MarkingCode | AggregateCode | UnknownBarcode


_LINEAR_LENGTHS = (8, 12, 13, 14)


def classify(raw: str, weight_formats: tuple[WeightBarcodeFormat, ...] = DEFAULT_WEIGHT_FORMATS) -> ParsedBarcode:
    """Say what ``raw`` is, given the store's weight-label formats."""
    text = normalize_scan(raw)
    if not text:
        return UnknownBarcode(raw, "Пустой штрихкод")
    linear = text.isascii() and text.isdigit() and len(text) in _LINEAR_LENGTHS
    if not linear:
        if GS in text or len(text) > max(_LINEAR_LENGTHS):
            try:
                return parse_marking(raw)
            except InvalidBarcode as exc:
                return UnknownBarcode(raw, str(exc))
        return UnknownBarcode(raw, "Не штрихкод товара (EAN-8/UPC-A/EAN-13/ITF-14) и не код маркировки")
    if len(text) == 13 and any(fmt.matches(text) for fmt in weight_formats):
        try:
            return WeightLabel(raw, decode_weight_barcode(text, weight_formats))
        except InvalidBarcode as exc:
            return UnknownBarcode(raw, str(exc))
    try:
        return ProductBarcode(raw, parse_gtin(text))
    except InvalidBarcode as exc:
        return UnknownBarcode(raw, str(exc))
