"""make_scan: symbology from the AIM id or inferred, meaning from protocols.barcodes.classify."""

from __future__ import annotations

from decimal import Decimal

from protocols.barcodes import (
    MarkingCode,
    ProductBarcode,
    ProductKind,
    UnknownBarcode,
    WeightBarcodeFormat,
    WeightLabel,
)
from protocols.scanner import AimId, CodeScanned, Symbology, make_scan

STORE = (WeightBarcodeFormat(("22", "23")),)


def test_ean13_with_aim() -> None:
    scan = make_scan(CodeScanned(b"4600439931256", AimId("E", "0"), 5.0))
    assert scan.symbology is Symbology.EAN13 and scan.data == "4600439931256" and scan.at == 5.0
    assert isinstance(scan.parsed, ProductBarcode) and scan.parsed.gtin.gtin14 == "04600439931256"


def test_upc_a_under_the_ean_identifier() -> None:
    assert make_scan(CodeScanned(b"036000291452", AimId("E", "0"), 0.0)).symbology is Symbology.UPCA


def test_weight_label_uses_the_store_prefixes() -> None:
    scan = make_scan(CodeScanned(b"2200123012340", None, 0.0), STORE)
    assert isinstance(scan.parsed, WeightLabel)
    assert scan.parsed.barcode.item_code == 123 and scan.parsed.barcode.weight_kg == Decimal("1.234")
    assert scan.symbology is Symbology.EAN13 and scan.aim is None
    # prefix 21 is not a weight prefix in this store: an ordinary (in-store) EAN-13
    assert isinstance(make_scan(CodeScanned(b"2100123012343", None, 0.0), STORE).parsed, ProductBarcode)


def test_marking_code_keeps_gs_and_is_parsed() -> None:
    raw = b"0104600439931256215bTxQ!\x1d93dGVz"
    scan = make_scan(CodeScanned(raw, AimId("d", "2"), 0.0))
    assert scan.data == raw.decode() and scan.has_gs and scan.raw == raw
    assert scan.symbology is Symbology.GS1_DATAMATRIX
    assert isinstance(scan.parsed, MarkingCode) and scan.parsed.kind is ProductKind.MILK
    assert scan.parsed.gtin == "04600439931256" and scan.parsed.serial == "5bTxQ!"
    inferred = make_scan(CodeScanned(raw, None, 0.0))
    assert inferred.symbology is Symbology.GS1_DATAMATRIX


def test_tobacco_pack_is_plain_datamatrix() -> None:
    scan = make_scan(CodeScanned(b"04600439931256-BQ4Wc:AAAAbcde", None, 0.0))
    assert isinstance(scan.parsed, MarkingCode) and scan.parsed.tobacco_pack
    assert scan.symbology is Symbology.DATAMATRIX


def test_non_utf8_falls_back_to_cp1251_and_unknown_codes_are_values() -> None:
    scan = make_scan(CodeScanned("ST00012|Name=ООО Ромашка".encode("cp1251"), AimId("Q", "1"), 0.0))
    assert scan.data == "ST00012|Name=ООО Ромашка" and scan.symbology is Symbology.QR
    assert isinstance(scan.parsed, UnknownBarcode)
    assert make_scan(CodeScanned("Привет".encode(), None, 0.0)).data == "Привет"
    assert (
        make_scan(CodeScanned(b"4600439931257", None, 0.0)).symbology is Symbology.UNKNOWN
    )  # bad check digit
