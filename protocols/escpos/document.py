"""Non-fiscal documents (picking lists, order slips, shift summaries) and their text layout.

A ``Document`` is a title plus blocks: ``Paragraph`` (text, wrapped), ``Table`` (columns
aligned to the paper width), ``Totals`` (label left, value right), ``Separator``,
``Barcode`` (EAN-13 / Code 128) and ``QrCode``. ``layout(doc, width)`` turns it into
``PrintLine``s for a paper width of 32, 42 or 48 characters (58 mm / 80 mm font B / 80 mm
font A) — pure, so the driver and tests share it.

Decisions: long text **wraps** at word boundaries (never truncated: a picking list must
not lose a product name); in a table only the flexible column (``width=None``) wraps, and
a fixed column value longer than its width is a ``LocalProtocolError`` (a number cut
short would lie). Text must fit CP866 (the code page Russian receipt printers ship with):
a few typographic characters are mapped (``«»`` → ``"``, ``—`` → ``-``, ``₽`` → ``р.``,
``…`` → ``...``) and anything else CP866 lacks becomes ``?``.
"""

from __future__ import annotations

import textwrap
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from protocols.escpos.errors import LocalProtocolError

WIDTHS: Final = (32, 42, 48)
_TRANSLATE: Final = str.maketrans(
    {
        "«": '"',
        "»": '"',
        "„": '"',
        "“": '"',
        "”": '"',
        "—": "-",
        "–": "-",
        "’": "'",
        "‘": "'",
        "\u00a0": " ",
        "\u202f": " ",
    }
)
_MULTI: Final = {"₽": "р.", "…": "..."}


def to_cp866(text: str) -> str:
    """``text`` restricted to what CP866 can print (see the module note)."""
    text = unicodedata.normalize("NFC", text).translate(_TRANSLATE)
    for k, v in _MULTI.items():
        text = text.replace(k, v)
    out = []
    for ch in text:
        if ch in "\t\r\n" or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(" ")
            continue
        try:
            ch.encode("cp866")
        except UnicodeEncodeError:
            out.append("?")
        else:
            out.append(ch)
    return "".join(out)


class Align(StrEnum):
    LEFT = "left"
    CENTER = "center"
    RIGHT = "right"


@dataclass(frozen=True)
class Paragraph:
    text: str
    align: Align = Align.LEFT
    bold: bool = False


@dataclass(frozen=True)
class Column:
    title: str
    width: int | None = None  # characters; None = takes the rest and wraps
    align: Align = Align.LEFT

    def __post_init__(self) -> None:
        if self.width is not None and not 1 <= self.width <= 48:
            raise LocalProtocolError(f"ширина колонки {self.title!r}: 1–48 символов", "columns")


@dataclass(frozen=True)
class Table:
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]
    header: bool = True

    def __post_init__(self) -> None:
        if not self.columns:
            raise LocalProtocolError("таблица без колонок", "columns")
        if sum(1 for c in self.columns if c.width is None) > 1:
            raise LocalProtocolError("в таблице может быть только одна колонка без ширины", "columns")
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise LocalProtocolError(
                    f"строка {i + 1}: {len(row)} значений, а колонок {len(self.columns)}", "rows"
                )


@dataclass(frozen=True)
class Totals:
    items: tuple[tuple[str, str], ...]
    bold: bool = True


@dataclass(frozen=True)
class Separator:
    char: str = "-"


class Symbology(StrEnum):
    EAN13 = "EAN13"
    CODE128 = "CODE128"


@dataclass(frozen=True)
class Barcode:
    data: str
    symbology: Symbology = Symbology.CODE128

    def __post_init__(self) -> None:
        if self.symbology is Symbology.EAN13:
            if not (self.data.isascii() and self.data.isdigit() and len(self.data) in (12, 13)):
                raise LocalProtocolError(f"EAN-13: 12 или 13 цифр, получено {self.data!r}", "barcode")
        elif not (1 <= len(self.data) <= 64 and self.data.isascii() and self.data.isprintable()):
            raise LocalProtocolError("Code 128: 1–64 печатных символа ASCII", "barcode")


@dataclass(frozen=True)
class QrCode:
    data: str
    size: int = 5

    def __post_init__(self) -> None:
        if not 1 <= len(self.data.encode("utf-8")) <= 700:
            raise LocalProtocolError("QR: 1–700 байт данных", "qr")
        if not 1 <= self.size <= 16:
            raise LocalProtocolError("QR: размер модуля 1–16", "qr")


Block = Paragraph | Table | Totals | Separator | Barcode | QrCode


@dataclass(frozen=True)
class Document:
    title: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.title.strip():
            raise LocalProtocolError("документ без заголовка", "title")


@dataclass(frozen=True)
class PrintLine:
    """One line of output, or a code (``barcode``/``qr`` set, ``text`` empty)."""

    text: str = ""
    align: Align = Align.LEFT
    bold: bool = False
    double: bool = False
    barcode: Barcode | None = None
    qr: QrCode | None = None


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]


def _cell(text: str, width: int, align: Align) -> str:
    if align is Align.RIGHT:
        return text.rjust(width)
    if align is Align.CENTER:
        return text.center(width)
    return text.ljust(width)


def _table(table: Table, width: int) -> list[PrintLine]:
    fixed = sum(c.width or 0 for c in table.columns) + len(table.columns) - 1
    flex = width - fixed
    has_flex = any(c.width is None for c in table.columns)
    if (has_flex and flex < 4) or (not has_flex and fixed > width):
        raise LocalProtocolError(f"колонки таблицы шире бумаги ({width} символов)", "columns")
    widths = [c.width if c.width is not None else flex for c in table.columns]
    lines: list[PrintLine] = []
    rows: list[tuple[tuple[str, ...], bool]] = []
    if table.header:
        rows.append((tuple(to_cp866(c.title) for c in table.columns), True))
    rows.extend((tuple(to_cp866(v) for v in row), False) for row in table.rows)
    for values, is_header in rows:
        cells: list[list[str]] = []
        for col, w, value in zip(table.columns, widths, values, strict=True):
            if col.width is None:
                cells.append(_wrap(value, w))
            elif len(value) > w:
                if is_header:
                    cells.append([value[:w]])
                else:
                    raise LocalProtocolError(
                        f"значение {value!r} не помещается в колонку {col.title!r} ({w})", "rows"
                    )
            else:
                cells.append([value])
        height = max(len(c) for c in cells)
        for i in range(height):
            parts = [
                _cell(c[i] if i < len(c) else "", w, col.align)
                for c, w, col in zip(cells, widths, table.columns, strict=True)
            ]
            lines.append(PrintLine(" ".join(parts).rstrip(), bold=is_header))
        if is_header:
            lines.append(PrintLine("-" * width))
    return lines


def layout(doc: Document, width: int = 48) -> list[PrintLine]:
    """The document as lines of at most ``width`` characters (CP866-safe text)."""
    if width not in WIDTHS:
        raise LocalProtocolError(f"ширина бумаги {width}: ожидается одно из {WIDTHS}", "width")
    lines = [PrintLine(t, Align.CENTER, bold=True, double=True) for t in _wrap(to_cp866(doc.title), width)]
    lines.append(PrintLine())
    for block in doc.blocks:
        if isinstance(block, Paragraph):
            lines += [PrintLine(t, block.align, block.bold) for t in _wrap(to_cp866(block.text), width)]
        elif isinstance(block, Separator):
            char = to_cp866(block.char[:1] or "-")
            lines.append(PrintLine(char * width))
        elif isinstance(block, Table):
            lines += _table(block, width)
        elif isinstance(block, Totals):
            for label, value in block.items:
                label, value = to_cp866(label), to_cp866(value)
                if len(value) >= width:
                    raise LocalProtocolError(f"итог {value!r} шире бумаги", "totals")
                room = width - len(value) - 1
                wrapped = _wrap(label, room)
                for extra in wrapped[:-1]:
                    lines.append(PrintLine(extra, bold=block.bold))
                lines.append(PrintLine(wrapped[-1].ljust(room) + " " + value, bold=block.bold))
        elif isinstance(block, Barcode):
            lines.append(PrintLine(align=Align.CENTER, barcode=block))
        else:
            lines.append(PrintLine(align=Align.CENTER, qr=block))
    return lines
