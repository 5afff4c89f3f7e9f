from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import barcodes as bc

GS = "\x1d"
# Shape of a real shoe/clothes code (crypto part anonymised: same lengths and alphabet).
FULL = "010460043993125621JgXJ5.T" + GS + "91EE06" + GS + "92YWCXbmK6SN8vvwoxZFk7WAY8WoJNMGGr6Cgtiuja04c="
FULL13 = "0104600439931256215Bf)8WaBc1234" + GS + "91EE06" + GS + "92" + "A" * 43 + "="
MILK = "010460043993125621" + "5Bf)8W" + GS + "93dGVz"
MILK_WEIGHED = MILK + GS + "3103001250"
WATER = "010460043993125621" + "ABCDEFGHIJKLM" + GS + "93xYz1"
BEER = "010460043993125621" + "AbC/123" + GS + "93QQ12"
BLOCK = "010460043993125621" + "-(nj)nz" + GS + "8005123000" + GS + "93AbCd"
PACK = "04600439931256" + "-(nj)nz" + "AAAA" + "Gqe1"


def test_full_code_fields_and_fiscal_form() -> None:
    code = bc.parse_marking(FULL)
    assert isinstance(code, bc.MarkingCode)
    assert (code.gtin, code.serial, code.verification_key) == ("04600439931256", "JgXJ5.T", "EE06")
    assert code.verification_code == "YWCXbmK6SN8vvwoxZFk7WAY8WoJNMGGr6Cgtiuja04c="
    assert code.crypto_tail is None and code.kind is bc.ProductKind.OTHER
    assert code.fiscal == FULL
    assert code.identity == "010460043993125621JgXJ5.T"


@pytest.mark.parametrize(
    ("raw", "kind", "serial"),
    [
        (MILK, bc.ProductKind.MILK, "5Bf)8W"),
        (WATER, bc.ProductKind.WATER, "ABCDEFGHIJKLM"),
        (BEER, bc.ProductKind.BEER, "AbC/123"),
        (BLOCK, bc.ProductKind.TOBACCO, "-(nj)nz"),
    ],
)
def test_short_codes_kinds(raw: str, kind: bc.ProductKind, serial: str) -> None:
    code = bc.parse_marking(raw)
    assert isinstance(code, bc.MarkingCode)
    assert code.kind is kind and code.serial == serial
    assert code.fiscal == raw


def test_weighed_milk_keeps_weight_out_of_fiscal_form() -> None:
    code = bc.parse_marking(MILK_WEIGHED)
    assert isinstance(code, bc.MarkingCode)
    assert code.weight_kg == Decimal("1.250")
    assert code.extra == (("3103", "001250"),)
    assert code.fiscal == MILK
    assert bc.encode_marking(code) == MILK_WEIGHED


def test_tobacco_pack_29_chars() -> None:
    assert len(PACK) == 29
    code = bc.parse_marking(PACK)
    assert isinstance(code, bc.MarkingCode) and code.tobacco_pack
    assert (code.gtin, code.serial, code.mrp, code.crypto_tail) == ("04600439931256", "-(nj)nz", "AAAA", "Gqe1")
    assert code.kind is bc.ProductKind.TOBACCO and code.fiscal == PACK
    with pytest.raises(bc.BadCheckDigit):
        bc.parse_marking("04600439931257" + PACK[14:])


@pytest.mark.parametrize(
    "scanned",
    [
        "]d2" + FULL,
        GS + FULL,
        "\xe8" + FULL.replace(GS, "\xe8"),
        FULL.replace(GS, "\u241d"),
        FULL + "\r\n",
        FULL.replace(GS, ""),  # every GS lost: restored from the fixed-length tail
    ],
)
def test_scanner_fnc1_forms(scanned: str) -> None:
    code = bc.parse_marking(scanned)
    assert isinstance(code, bc.MarkingCode)
    assert code.fiscal == FULL and code.raw == scanned
    assert code.gs_restored is (GS not in scanned and "\xe8" not in scanned and "\u241d" not in scanned)


def test_text_gs_is_data_not_a_separator() -> None:
    # "<GS>" is four valid serial characters, not a separator stand-in.
    code = bc.parse_marking("010460043993125621AB<GS>" + GS + "93dGVz")
    assert isinstance(code, bc.MarkingCode) and code.serial == "AB<GS>"


def test_sscc_aggregate() -> None:
    code = bc.parse_marking("00376104250021234569")
    assert code == bc.AggregateCode("00376104250021234569", "376104250021234569")
    with pytest.raises(bc.BadCheckDigit):
        bc.parse_marking("00376104250021234568")


@pytest.mark.parametrize(
    ("raw", "error", "text"),
    [
        ("0104600439931257215Bf)8W" + GS + "93dGVz", bc.BadCheckDigit, "GTIN"),
        ("0104600439931256" + GS + "93dGVz", bc.MissingElement, "AI 21"),
        ("0104600439931256215Bf)8W", bc.MissingElement, "кода? проверки|разделителей"),
        ("0104600439931256215Bf)8W" + GS + "93dGVzz", bc.BadLength, "AI 93"),
        ("0104600439931256215Bf)8W" + GS + "91EE06", bc.MissingElement, "кода проверки"),
        ("0104600439931256215Bf)8W" + GS + "93dG\x07z", bc.BadCharacters, "символ"),
        ("17250101", bc.MissingElement, "AI 01"),
        ("", bc.BadLength, "Пустой"),
        ("01" + "9" * 400, bc.BadLength, "не код маркировки"),
    ],
)
def test_clear_errors(raw: str, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        bc.parse_marking(raw)


# --- classify ----------------------------------------------------------------------------


def test_classify_each_kind() -> None:
    stores = (bc.WeightBarcodeFormat.from_range(20, 25), bc.WeightBarcodeFormat(("26",), measure=bc.Measure.PIECES))
    assert isinstance(bc.classify("4006381333931", stores), bc.ProductBarcode)
    assert isinstance(bc.classify("73513537", stores), bc.ProductBarcode)
    label = bc.classify("2200123012340", stores)
    assert isinstance(label, bc.WeightLabel) and label.barcode.item_code == 123
    # Prefix 29 not configured as weight here: an in-store EAN-13 like any other.
    other = bc.classify(bc.ean13("290012301234"), stores)
    assert isinstance(other, bc.ProductBarcode) and other.gtin.restricted_circulation
    assert isinstance(bc.classify("]d2" + MILK, stores), bc.MarkingCode)
    assert isinstance(bc.classify("00376104250021234569", stores), bc.AggregateCode)
    bad = bc.classify("4006381333932", stores)
    assert isinstance(bad, bc.UnknownBarcode) and "контрольная цифра" in bad.reason
    assert isinstance(bc.classify("hello", stores), bc.UnknownBarcode)
    assert isinstance(bc.classify("", stores), bc.UnknownBarcode)


# --- properties --------------------------------------------------------------------------

GS1_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!\"%&'()*+,-./:;<=>?_"
gtin14 = st.text("0123456789", min_size=13, max_size=13).map(bc.with_check_digit)


def chars(n: int) -> st.SearchStrategy[str]:
    return st.text(GS1_CHARS, min_size=n, max_size=n)


full_codes = st.builds(
    lambda g, s, k, c: bc.MarkingCode("", g, s, bc.ProductKind.OTHER, verification_key=k, verification_code=c),
    gtin14,
    st.text(GS1_CHARS, min_size=1, max_size=20),
    chars(4),
    chars(44),
)
short_codes = st.builds(
    lambda g, s, c: bc.MarkingCode("", g, s, bc.ProductKind.OTHER, crypto_tail=c),
    gtin14,
    st.text(GS1_CHARS, min_size=1, max_size=20),
    chars(4),
)


def same_fields(a: bc.MarkingCode, b: bc.MarkingCode) -> bool:
    keys = ("gtin", "serial", "verification_key", "verification_code", "crypto_tail", "mrp", "extra")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


@given(st.one_of(full_codes, short_codes))
def test_marking_round_trip(code: bc.MarkingCode) -> None:
    text = bc.encode_marking(code)
    parsed = bc.parse_marking(text)
    assert isinstance(parsed, bc.MarkingCode)
    assert same_fields(parsed, code) and parsed.fiscal == text
    again = bc.parse_marking("]d2" + text.replace(GS, "\xe8"))
    assert isinstance(again, bc.MarkingCode) and same_fields(again, code)


@given(gtin14, chars(13), chars(4), chars(44))
def test_gs_lost_full_codes_are_restored(gtin: str, serial: str, key: str, crypto: str) -> None:
    code = bc.MarkingCode("", gtin, serial, bc.ProductKind.OTHER, verification_key=key, verification_code=crypto)
    parsed = bc.parse_marking(code.fiscal.replace(GS, ""))
    assert isinstance(parsed, bc.MarkingCode) and parsed.gs_restored
    assert same_fields(parsed, code)


@given(st.text(max_size=200))
def test_marking_parser_fuzz(raw: str) -> None:
    try:
        bc.parse_marking(raw)
    except bc.InvalidBarcode:
        pass


@given(st.text(alphabet=st.sampled_from(GS1_CHARS + GS + "\xe8]"), max_size=150))
def test_marking_parser_fuzz_gs1_alphabet(raw: str) -> None:
    try:
        bc.parse_marking("01" + raw)
    except bc.InvalidBarcode:
        pass


@given(st.text(max_size=200))
def test_classify_never_raises(raw: str) -> None:
    result = bc.classify(raw)
    assert result.raw == raw
