"""The ``print_document`` args: the ``protocols.escpos`` document model as JSON.

::

    {"title": "Сборочный лист №12",
     "blocks": [
        {"type": "text", "text": "Заказ 4711, доставка к 18:00", "align": "left", "bold": false},
        {"type": "separator", "char": "-"},
        {"type": "table", "columns": [{"title": "Товар"}, {"title": "Кол.", "width": 7, "align": "right"}],
         "rows": [["Молоко 3,2% 1 л", "2"], ["Хлеб", "1"]], "header": true},
        {"type": "totals", "items": [["Итого позиций", "3"]]},
        {"type": "barcode", "data": "4600000000008", "symbology": "EAN13"},
        {"type": "qr", "data": "https://example.ru/o/4711", "size": 5}]}

Validated in the dispatcher thread down to the layout for the configured paper width, so a
table wider than the paper is ``invalid_args`` naming the block before anything is journaled.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from protocols.escpos import (
    Align,
    Barcode,
    Column,
    Document,
    Paragraph,
    QrCode,
    Separator,
    Symbology,
    Table,
    Totals,
)
from protocols.escpos.document import Block


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextBlock(_Strict):
    type: Literal["text"]
    text: str = Field(max_length=2000)
    align: Align = Align.LEFT
    bold: bool = False

    def build(self) -> Block:
        return Paragraph(self.text, self.align, self.bold)


class SeparatorBlock(_Strict):
    type: Literal["separator"]
    char: str = Field(default="-", min_length=1, max_length=1)

    def build(self) -> Block:
        return Separator(self.char)


class ColumnSpec(_Strict):
    title: str = Field(max_length=48)
    width: int | None = Field(default=None, ge=1, le=48)
    align: Align = Align.LEFT


class TableBlock(_Strict):
    type: Literal["table"]
    columns: list[ColumnSpec] = Field(min_length=1, max_length=8)
    rows: list[list[str]] = Field(max_length=500)
    header: bool = True

    def build(self) -> Block:
        return Table(
            tuple(Column(c.title, c.width, c.align) for c in self.columns),
            tuple(tuple(row) for row in self.rows),
            self.header,
        )


class TotalsBlock(_Strict):
    type: Literal["totals"]
    items: list[tuple[str, str]] = Field(min_length=1, max_length=50)
    bold: bool = True

    def build(self) -> Block:
        return Totals(tuple(self.items), self.bold)


class BarcodeBlock(_Strict):
    type: Literal["barcode"]
    data: str
    symbology: Symbology = Symbology.CODE128

    def build(self) -> Block:
        return Barcode(self.data, self.symbology)


class QrBlock(_Strict):
    type: Literal["qr"]
    data: str
    size: int = Field(default=5, ge=1, le=16)

    def build(self) -> Block:
        return QrCode(self.data, self.size)


AnyBlock = Annotated[
    TextBlock | SeparatorBlock | TableBlock | TotalsBlock | BarcodeBlock | QrBlock, Field(discriminator="type")
]


class PrintDocumentArgs(_Strict):
    """``print_document``: a non-fiscal document (picking list, order slip, shift summary)."""

    title: str = Field(min_length=1, max_length=200)
    blocks: list[AnyBlock] = Field(default_factory=list, max_length=200)

    def build(self) -> Document:
        """The ``protocols.escpos`` document (raises its ``LocalProtocolError``)."""
        return Document(self.title, tuple(b.build() for b in self.blocks))
