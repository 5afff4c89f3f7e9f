"""``Scan``: one scanned code as the rest of Vitrina sees it, whatever the scanner's link.

``data`` is the code as scanned (GS kept as 0x1D, exactly what the fiscal register needs for a
marking code), ``parsed`` is ``protocols.barcodes.classify`` of it with the store's weight
barcode formats. ``symbology`` comes from the AIM identifier when the scanner sent one
(``aim`` is then set), else it is inferred from what ``parsed`` found (``aim`` is ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.barcodes import (
    DEFAULT_WEIGHT_FORMATS,
    AggregateCode,
    MarkingCode,
    ParsedBarcode,
    ProductBarcode,
    WeightBarcodeFormat,
    WeightLabel,
    classify,
)
from protocols.barcodes import Symbology as KeySymbology
from protocols.scanner.framing import CodeScanned
from protocols.scanner.symbology import AimId, Symbology

_FROM_KEY = {
    KeySymbology.EAN13: Symbology.EAN13,
    KeySymbology.EAN8: Symbology.EAN8,
    KeySymbology.UPCA: Symbology.UPCA,
    KeySymbology.ITF14: Symbology.ITF,
}


@dataclass(frozen=True, slots=True)
class Scan:
    """One scan: what was read, how, and what it means."""

    data: str
    """The code as scanned, GS kept (``\\x1d``)."""
    raw: bytes
    """``data`` as bytes off the wire (after prefix/AIM/suffix removal and GS restoration)."""
    symbology: Symbology
    aim: AimId | None
    parsed: ParsedBarcode
    at: float
    """Monotonic time the scan was complete."""

    @property
    def has_gs(self) -> bool:
        return "\x1d" in self.data


def decode_text(raw: bytes, fallback_encoding: str = "cp1251") -> str:
    """UTF-8 if it is valid UTF-8 (ASCII is), else ``fallback_encoding`` (Russian QR codes)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode(fallback_encoding, errors="replace")


def infer_symbology(parsed: ParsedBarcode) -> Symbology:
    """The symbology a code of this kind is printed in (used when no AIM id was sent)."""
    if isinstance(parsed, ProductBarcode):
        return _FROM_KEY.get(parsed.gtin.symbology, Symbology.UNKNOWN)
    if isinstance(parsed, WeightLabel):
        return Symbology.EAN13
    if isinstance(parsed, MarkingCode):
        return Symbology.DATAMATRIX if parsed.tobacco_pack else Symbology.GS1_DATAMATRIX
    if isinstance(parsed, AggregateCode):
        return Symbology.GS1_128
    return Symbology.UNKNOWN


def make_scan(
    event: CodeScanned,
    weight_formats: tuple[WeightBarcodeFormat, ...] = DEFAULT_WEIGHT_FORMATS,
    *,
    fallback_encoding: str = "cp1251",
) -> Scan:
    """Turn a decoder's ``CodeScanned`` into a ``Scan`` with its meaning."""
    data = decode_text(event.data, fallback_encoding)
    parsed = classify(data, weight_formats)
    if event.aim is not None:
        symbology = event.aim.symbology
        if symbology is Symbology.EAN13 and len(data) == 12:
            symbology = Symbology.UPCA
    else:
        symbology = infer_symbology(parsed)
    return Scan(data=data, raw=event.data, symbology=symbology, aim=event.aim, parsed=parsed, at=event.at)
