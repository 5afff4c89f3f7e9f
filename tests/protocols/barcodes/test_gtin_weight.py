from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import barcodes as bc

# Published examples: Wikipedia "International Article Number" (EAN-13, EAN-8), "Universal
# Product Code" (UPC-A), "ITF-14", "Serial Shipping Container Code".
VALID = [
    ("4006381333931", bc.Symbology.EAN13),
    ("73513537", bc.Symbology.EAN8),
    ("036000291452", bc.Symbology.UPCA),
    ("15400141288763", bc.Symbology.ITF14),
    ("376104250021234569", bc.Symbology.SSCC),
    ("2200123012340", bc.Symbology.EAN13),  # reference note §4: item 123, 1.234 kg
]


@pytest.mark.parametrize(("code", "symbology"), VALID)
def test_published_codes_validate(code: str, symbology: bc.Symbology) -> None:
    assert bc.validate(code, symbology) == code
    assert bc.check_digit(code[:-1]) == int(code[-1])


@pytest.mark.parametrize(("code", "symbology"), VALID)
def test_wrong_check_digit_is_named(code: str, symbology: bc.Symbology) -> None:
    bad = code[:-1] + str((int(code[-1]) + 1) % 10)
    with pytest.raises(bc.BadCheckDigit, match=f"должна быть {code[-1]}"):
        bc.validate(bad, symbology)


def test_length_and_characters() -> None:
    with pytest.raises(bc.BadLength):
        bc.validate("400638133393", bc.Symbology.EAN13)
    with pytest.raises(bc.BadCharacters):
        bc.validate("40063813339A1", bc.Symbology.EAN13)
    with pytest.raises(bc.BadCharacters):
        bc.check_digit("١٢٣")  # Arabic-Indic digits are str.isdigit() but not barcode digits
    with pytest.raises(bc.BadLength):
        bc.parse_gtin("12345")


def test_parse_gtin_by_length_and_gtin14() -> None:
    g = bc.parse_gtin("036000291452")
    assert g.symbology is bc.Symbology.UPCA
    assert g.gtin14 == "00036000291452"
    assert bc.parse_gtin("73513537").gtin14 == "00000073513537"
    assert bc.parse_gtin("2200123012340").restricted_circulation
    assert not bc.parse_gtin("4006381333931").restricted_circulation


@given(st.text(alphabet="0123456789", min_size=1, max_size=17), st.data())
def test_every_single_digit_error_is_detected(payload: str, data: st.DataObject) -> None:
    code = bc.with_check_digit(payload)
    assert bc.has_valid_check_digit(code)
    pos = data.draw(st.integers(0, len(code) - 1))
    new = data.draw(st.sampled_from([d for d in "0123456789" if d != code[pos]]))
    assert not bc.has_valid_check_digit(code[:pos] + new + code[pos + 1 :])


# --- weight labels -------------------------------------------------------------------------


def test_reference_weight_vector() -> None:
    fmt = bc.WeightBarcodeFormat.from_range(20, 25)
    wb = bc.WeightBarcode("22", 123, bc.weight_to_grams(Decimal("1.234")))
    assert bc.encode_weight_barcode(wb, fmt) == "2200123012340"
    decoded = bc.decode_weight_barcode("2200123012340", fmt)
    assert decoded == wb
    assert decoded.weight_kg == Decimal("1.234")
    assert decoded.grams == 1234 and decoded.pieces is None


def test_piece_count_and_six_digit_item_layouts() -> None:
    weight = bc.WeightBarcodeFormat.from_range(20, 25)
    pieces = bc.WeightBarcodeFormat(("26",), measure=bc.Measure.PIECES)
    code = bc.encode_weight_barcode(bc.WeightBarcode("26", 4711, 12, bc.Measure.PIECES), pieces)
    assert code == bc.ean13("260471100012")
    decoded = bc.decode_weight_barcode(code, (weight, pieces))
    assert decoded.pieces == 12 and decoded.weight_kg is None
    six = bc.WeightBarcodeFormat(("21",), item_digits=6)
    assert six.value_digits == 4
    assert bc.decode_weight_barcode(bc.ean13("211234569999"), six).item_code == 123456
    with pytest.raises(bc.BarcodeEncodeError, match="не помещается"):
        bc.encode_weight_barcode(bc.WeightBarcode("21", 1, 10_000), six)


def test_weight_label_errors() -> None:
    fmt = bc.WeightBarcodeFormat.from_range(20, 25)
    with pytest.raises(bc.UnknownPrefix):
        bc.decode_weight_barcode(bc.ean13("270012301234"), fmt)
    with pytest.raises(bc.BadCheckDigit):
        bc.decode_weight_barcode("2200123012341", fmt)
    with pytest.raises(bc.BarcodeEncodeError):
        bc.encode_weight_barcode(bc.WeightBarcode("27", 1, 1), fmt)
    with pytest.raises(bc.BarcodeEncodeError):
        bc.encode_weight_barcode(bc.WeightBarcode("22", 100_000, 1), fmt)
    with pytest.raises(bc.BarcodeEncodeError):
        bc.WeightBarcode("22", 1, -5)
    with pytest.raises(bc.BarcodeEncodeError, match="точнее грамма"):
        bc.weight_to_grams(Decimal("1.2345"))
    with pytest.raises(bc.BarcodeEncodeError):
        bc.WeightBarcodeFormat(("31",))
    with pytest.raises(bc.BarcodeEncodeError):
        bc.WeightBarcodeFormat(("20", "210"))


formats = st.builds(
    lambda prefixes, item_digits, measure, three: bc.WeightBarcodeFormat(
        tuple(sorted({("2" + p) if not three else ("2" + p + "0") for p in prefixes})), item_digits, measure
    ),
    st.lists(st.sampled_from("0123456789"), min_size=1, max_size=10),
    st.integers(1, 8),
    st.sampled_from(list(bc.Measure)),
    st.booleans(),
)


@given(formats, st.data())
def test_weight_barcode_round_trip(fmt: bc.WeightBarcodeFormat, data: st.DataObject) -> None:
    wb = bc.WeightBarcode(
        data.draw(st.sampled_from(fmt.prefixes)),
        data.draw(st.integers(0, 10**fmt.item_digits - 1)),
        data.draw(st.integers(0, fmt.max_value)),
        fmt.measure,
    )
    code = bc.encode_weight_barcode(wb, fmt)
    assert len(code) == 13 and bc.has_valid_check_digit(code)
    assert bc.decode_weight_barcode(code, fmt) == wb
    label = bc.classify(code, (fmt,))
    assert isinstance(label, bc.WeightLabel) and label.barcode == wb


@given(st.integers(0, 99_999).map(lambda g: Decimal(g) / 1000))
def test_kg_grams_round_trip(kg: Decimal) -> None:
    fmt = bc.WeightBarcodeFormat()
    wb = bc.WeightBarcode("20", 1, bc.weight_to_grams(kg))
    assert bc.decode_weight_barcode(bc.encode_weight_barcode(wb, fmt), fmt).weight_kg == kg.quantize(
        Decimal("0.001")
    )
