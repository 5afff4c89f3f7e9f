"""How a ``Scan`` becomes the ``scan`` event's JSON.

``data`` is the code exactly as scanned, GS (``\\x1d``) kept — JSON escapes it as ``\\u001d``,
so a marking code reaches the cloud byte for byte (the fiscal register needs the GS).
``parsed`` says what it means, by ``kind``:

* ``product`` — ``gtin`` (as scanned), ``gtin14``, ``symbology``;
* ``weight`` — a store weight/piece label: ``prefix``, ``plu`` (the scale's item code),
  ``grams`` and ``weight_kg`` (``"1.234"``) or ``pieces``;
* ``marking`` — a Честный знак code: ``gtin``, ``serial``, ``product_kind``, ``gs_restored``
  (the scanner lost the GS separators and the split was inferred), ``tobacco_pack``;
* ``aggregate`` — a box/pallet SSCC: ``sscc``;
* ``unknown`` — ``reason`` (Russian), e.g. a bad check digit.
"""

from __future__ import annotations

from typing import Any

from protocols.barcodes import AggregateCode, MarkingCode, ParsedBarcode, ProductBarcode, WeightLabel
from protocols.scanner import Scan


def parsed_json(parsed: ParsedBarcode) -> dict[str, Any]:
    if isinstance(parsed, WeightLabel):
        b = parsed.barcode
        weight = b.weight_kg
        return {
            "kind": "weight",
            "prefix": b.prefix,
            "plu": b.item_code,
            "measure": b.measure.value,
            "grams": b.grams,
            "weight_kg": None if weight is None else str(weight),
            "pieces": b.pieces,
        }
    if isinstance(parsed, MarkingCode):
        return {
            "kind": "marking",
            "gtin": parsed.gtin,
            "serial": parsed.serial,
            "product_kind": parsed.kind.value,
            "gs_restored": parsed.gs_restored,
            "tobacco_pack": parsed.tobacco_pack,
        }
    if isinstance(parsed, ProductBarcode):
        return {
            "kind": "product",
            "gtin": parsed.gtin.code,
            "gtin14": parsed.gtin.gtin14,
            "symbology": parsed.gtin.symbology.value,
        }
    if isinstance(parsed, AggregateCode):
        return {"kind": "aggregate", "sscc": parsed.sscc}
    return {"kind": "unknown", "reason": parsed.reason}


def scan_json(scan: Scan) -> dict[str, Any]:
    return {
        "symbology": scan.symbology.value,
        "aim": f"]{scan.aim.code}{scan.aim.modifier}" if scan.aim is not None else None,
        "data": scan.data,
        "parsed": parsed_json(scan.parsed),
    }
