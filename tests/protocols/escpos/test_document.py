"""Document layout for 32/42/48-character paper."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.escpos import (
    Align,
    Barcode,
    Column,
    Document,
    LocalProtocolError,
    Paragraph,
    QrCode,
    Separator,
    Symbology,
    Table,
    Totals,
    layout,
    to_cp866,
)

PICKING = Document(
    "Лист подбора № 123",
    (
        Paragraph("Доставка 26.11.2026 к 18:00 — «у дома»"),
        Table(
            (Column("Товар"), Column("Кол.", 8, Align.RIGHT), Column("Сумма", 9, Align.RIGHT)),
            (
                ("Молоко 3,2% 1 л Простоквашино ультрапастеризованное", "2 шт", "179,80"),
                ("Свинина шейка", "1,234 кг", "567,52"),
            ),
        ),
        Separator(),
        Totals((("Итого", "747,32 ₽"),)),
        Barcode("4600000000008", Symbology.EAN13),
        QrCode("https://vitrina.example/o/123"),
    ),
)


@pytest.mark.parametrize("width", [32, 42, 48])
def test_every_line_fits_and_is_cp866(width: int) -> None:
    lines = layout(PICKING, width)
    for line in lines:
        assert len(line.text) <= width
        line.text.encode("cp866")
    assert lines[0].double and lines[0].align is Align.CENTER
    row = next(line.text for line in lines if line.text.startswith("Свинина"))
    assert row.endswith("1,234 кг    567,52") and len(row) == width
    assert lines[-2].barcode is not None and lines[-1].qr is not None
    total = next(line.text for line in lines if line.text.startswith("Итого"))
    assert total.endswith("747,32 р.") and len(total) == width


def test_flex_column_wraps_and_fixed_column_overflow_is_an_error() -> None:
    lines = [line.text for line in layout(PICKING, 32)]
    assert "Молоко 3,2% 1     2 шт    179,80" in lines
    assert lines[lines.index("Молоко 3,2% 1     2 шт    179,80") + 1 :][:4] == [
        "л",
        "Простоквашино",
        "ультрапастери",
        "зованное",
    ]
    bad = Document("x", (Table((Column("a"), Column("n", 3)), (("x", "12345"),)),))
    with pytest.raises(LocalProtocolError) as info:
        layout(bad, 32)
    assert info.value.field == "rows"


@pytest.mark.parametrize(
    "build",
    [
        lambda: Document(" "),
        lambda: Table((), ()),
        lambda: Table((Column("a"), Column("b")), ()),
        lambda: Table((Column("a", 5),), (("1", "2"),)),
        lambda: Barcode("123", Symbology.EAN13),
        lambda: Barcode("Кириллица"),
        lambda: QrCode(""),
    ],
)
def test_invalid_documents(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LocalProtocolError):
        build()


def test_bad_width() -> None:
    with pytest.raises(LocalProtocolError):
        layout(PICKING, 40)


def test_cp866_mapping() -> None:
    assert to_cp866("«Ёлка» — 10 ₽…\t€") == '"Ёлка" - 10 р.... ?'


@given(st.text(max_size=200), st.sampled_from([32, 42, 48]))
def test_fuzz_any_text_lays_out_within_width(text: str, width: int) -> None:
    doc = Document(
        "Т",
        (
            Paragraph(text),
            Table((Column("Имя"), Column("Кол", 5)), ((text, "1"),)),
            Totals(((text, "1,00"),)),
        ),
    )
    for line in layout(doc, width):
        assert len(line.text) <= width
        line.text.encode("cp866")
