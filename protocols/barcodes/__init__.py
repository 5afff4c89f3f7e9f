"""Barcode and marking-code formats: GS1 check digits (EAN-13/EAN-8/UPC-A/ITF-14/SSCC),
in-store weight and piece labels, Честный знак marking codes, and ``classify`` for scans.

Pure functions and frozen values; no I/O. Errors: ``InvalidBarcode`` (the input is wrong)
and ``BarcodeEncodeError`` (we asked for an impossible encoding), both ``BarcodeError``.
"""

from protocols.barcodes.classify import (
    DEFAULT_WEIGHT_FORMATS,
    ParsedBarcode,
    ProductBarcode,
    UnknownBarcode,
    WeightLabel,
    classify,
)
from protocols.barcodes.errors import (
    BadCharacters,
    BadCheckDigit,
    BadLength,
    BarcodeEncodeError,
    BarcodeError,
    InvalidBarcode,
    MissingElement,
    UnknownPrefix,
)
from protocols.barcodes.gtin import (
    Gtin,
    Symbology,
    check_digit,
    ean13,
    has_valid_check_digit,
    parse_gtin,
    validate,
    validate_gtin14,
    with_check_digit,
)
from protocols.barcodes.marking import (
    GS,
    AggregateCode,
    MarkingCode,
    ProductKind,
    encode_marking,
    normalize_scan,
    parse_marking,
)
from protocols.barcodes.weight import (
    Measure,
    WeightBarcode,
    WeightBarcodeFormat,
    decode_weight_barcode,
    encode_weight_barcode,
    weight_to_grams,
)

__all__ = [
    "DEFAULT_WEIGHT_FORMATS",
    "GS",
    "AggregateCode",
    "BadCharacters",
    "BadCheckDigit",
    "BadLength",
    "BarcodeEncodeError",
    "BarcodeError",
    "Gtin",
    "InvalidBarcode",
    "MarkingCode",
    "Measure",
    "MissingElement",
    "ParsedBarcode",
    "ProductBarcode",
    "ProductKind",
    "Symbology",
    "UnknownBarcode",
    "UnknownPrefix",
    "WeightBarcode",
    "WeightBarcodeFormat",
    "WeightLabel",
    "check_digit",
    "classify",
    "decode_weight_barcode",
    "ean13",
    "encode_marking",
    "encode_weight_barcode",
    "has_valid_check_digit",
    "normalize_scan",
    "parse_gtin",
    "parse_marking",
    "validate",
    "validate_gtin14",
    "weight_to_grams",
    "with_check_digit",
]
