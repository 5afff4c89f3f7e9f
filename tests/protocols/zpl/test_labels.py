"""Label templates: validation errors name the field, ZPL is what the manual expects."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from barcode import EAN13  # python-barcode (a python-escpos dependency) as an independent oracle
from hypothesis import given
from hypothesis import strategies as st

from protocols.zpl import LabelSize, TemplateDataError, build_label, render_label, tokenize
from protocols.zpl.commands import decode_datamatrix_escapes, unescape_field_hex
from protocols.zpl.labels import MarkingCode, PriceTag, WeighedLabel, ean_check_digit

WEIGHED = {
    "name": "Свинина шейка охлаждённая",
    "weight_kg": "1.234",
    "price_per_kg": "459.90",
    "packed": "2026-11-26",
    "best_before": "2026-11-29",
    "item_code": 123,
}
MILK_CODE = "0104600000000008215abc_de\x1d93dGVz"


def commands(zpl: bytes) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for c in tokenize(zpl):
        out.setdefault(c.code, []).append(c.params)
    return out


def texts(zpl: bytes) -> list[str]:
    """Text fields (those under ^FH), hex escapes applied, as the printer reads them."""
    out, hex_on = [], False
    for c in tokenize(zpl):
        if c.code == "^FH":
            hex_on = True
        elif c.code == "^FD" and hex_on:
            out.append(unescape_field_hex(c.params).decode("utf-8"))
        elif c.code == "^FS":
            hex_on = False
    return out


def test_weight_barcode_matches_reference_vector() -> None:
    label = build_label("weighed", WEIGHED)
    assert isinstance(label, WeighedLabel)
    assert label.barcode == "2200123012340"  # devices-and-formats.md §4, recomputed
    assert label.total == Decimal("567.52")
    assert EAN13(label.barcode[:12]).get_fullcode() == label.barcode


@pytest.mark.parametrize("payload", ["460000000000", "400638133393", "220012301234", "000000000000"])
def test_check_digit_agrees_with_python_barcode(payload: str) -> None:
    assert payload + str(ean_check_digit(payload)) == EAN13(payload).get_fullcode()


def test_weighed_label_zpl() -> None:
    zpl = render_label(build_label("weighed", WEIGHED), LabelSize(58, 60, 203), copies=3)
    assert zpl.startswith(b"^XA^CI28^PW464^LL480^LH0,0") and zpl.endswith(b"^PQ3^XZ")
    cmds = commands(zpl)
    assert b"N,56,Y,N" in cmds["^BE"]
    assert b"220012301234" in [p for p in cmds["^FD"]]  # 12 digits: the printer adds the check digit
    shown = texts(zpl)
    assert "Масса нетто: 1,234 кг" in shown
    assert "Стоимость: 567,52 руб." in shown
    assert "Годен до: 29.11.2026" in shown


def test_300_dpi_scales_geometry() -> None:
    zpl = render_label(build_label("weighed", WEIGHED), LabelSize(58, 60, 300))
    assert b"^PW696^LL720" in zpl and b"^BY3" in zpl


def test_price_tag() -> None:
    zpl = render_label(
        build_label(
            "price_tag",
            {
                "name": "Хлеб",
                "price": 59.9,
                "unit": "шт",
                "price_per_kg": "149.75",
                "barcode": "4600000000008",
            },
        )
    )
    shown = texts(zpl)
    assert "59,90" in shown and "руб./шт" in shown and "1 кг: 149,75 руб." in shown
    assert b"460000000000" in commands(zpl)["^FD"]


def test_marking_label_datamatrix_escapes() -> None:
    zpl = render_label(build_label("marking", {"name": "Молоко 3,2%", "code": MILK_CODE}))
    cmds = tokenize(zpl)
    bx = next(i for i, c in enumerate(cmds) if c.code == "^BX")
    assert cmds[bx].args()[2] == "200" and cmds[bx].args()[6] == "_"
    data = cmds[bx + 1].params
    assert data == b"_10104600000000008215abc_d095de_193dGVz"
    assert cmds[bx - 1].code == "^FO" and cmds[bx + 1].code == "^FD"  # no ^FH on the DataMatrix field
    assert decode_datamatrix_escapes(data) == (True, MILK_CODE.encode())
    shown = texts(zpl)
    assert "04600000000008" in shown and "5abc_de" in shown


def test_marking_code_accepts_scanner_prefixes() -> None:
    code = MarkingCode("]d2\x1d" + MILK_CODE)
    assert code.gtin == "04600000000008" and code.serial == "5abc_de"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({k: v for k, v in WEIGHED.items() if k != "name"}, "name"),
        ({**WEIGHED, "weight_kg": "0"}, "weight_kg"),
        ({**WEIGHED, "weight_kg": "100.000"}, "weight_kg"),
        ({**WEIGHED, "weight_kg": "1.2345"}, "weight_kg"),
        ({**WEIGHED, "price_per_kg": "abc"}, "price_per_kg"),
        ({**WEIGHED, "best_before": "2026-11-01"}, "best_before"),
        ({**WEIGHED, "packed": "26.11.2026"}, "packed"),
        ({**WEIGHED, "item_code": 123456}, "item_code"),
        ({**WEIGHED, "prefix": "46"}, "prefix"),
        ({**WEIGHED, "total": "500.00"}, "total"),
        ({**WEIGHED, "name": "x" * 129}, "name"),
    ],
)
def test_weighed_validation_names_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(TemplateDataError) as info:
        build_label("weighed", data)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"price": "10"}, "name"),
        ({"name": "Хлеб"}, "price"),
        ({"name": "Хлеб", "price": "-1"}, "price"),
        ({"name": "Хлеб", "price": "1", "barcode": "4600000000001"}, "barcode"),
        ({"name": "Хлеб", "price": "1", "barcode": "46000"}, "barcode"),
        ({"name": "Хлеб", "price": True}, "price"),
    ],
)
def test_price_tag_validation(data: dict[str, object], field: str) -> None:
    with pytest.raises(TemplateDataError) as info:
        build_label("price_tag", data)
    assert info.value.field == field


@pytest.mark.parametrize(
    "code",
    [
        "0204600000000008215abc",
        "0104600000000001215abc",
        "01046000000000081X5abc",
        "0104600000000008215a^b",
        "0104600000000008215a~b",
        "01046000000000082",
    ],
)
def test_bad_marking_codes(code: str) -> None:
    with pytest.raises(TemplateDataError) as info:
        build_label("marking", {"name": "x", "code": code})
    assert info.value.field == "code"


def test_unknown_template_and_bad_copies() -> None:
    with pytest.raises(TemplateDataError) as info:
        build_label("poster", {})
    assert info.value.field == "template"
    with pytest.raises(TemplateDataError):
        render_label(PriceTag("Хлеб", Decimal("1")), copies=0)


def test_long_names_wrap_then_truncate() -> None:
    name = (
        "Колбаса варёная докторская высшего сорта в натуральной оболочке весовая производства мясокомбината"
    )
    zpl = render_label(PriceTag(name, Decimal("1")))
    shown = texts(zpl)
    assert len([t for t in shown if t and t[0] in "Кнвд" and t != "1,00"]) <= 2
    assert shown[1].endswith("...")
    assert all(len(t) <= 28 for t in shown[:2])


@given(st.text(max_size=60))
def test_user_text_can_never_inject_commands(name: str) -> None:
    try:
        label = PriceTag(name, Decimal("1.00"))
    except TemplateDataError:
        return
    zpl = render_label(label)
    codes = [c.code for c in tokenize(zpl)]
    assert codes.count("^XA") == 1 and codes.count("^XZ") == 1 and "~JA" not in codes
    assert not any(c.startswith("~") for c in codes)


def test_weighed_dates_accept_date_objects() -> None:
    label = build_label(
        "weighed", {**WEIGHED, "packed": dt.date(2026, 11, 26), "best_before": dt.date(2026, 12, 1)}
    )
    assert isinstance(label, WeighedLabel) and label.best_before == dt.date(2026, 12, 1)
