"""Label templates: price tags, weighed-goods labels and marking labels as ZPL II.

Each template is a frozen dataclass validated when built; ``from_mapping`` builds one from
bus/JSON data and names the missing or bad field in a ``TemplateDataError`` (Russian
message, for a person). ``render_label(label, size, copies)`` returns the ZPL bytes.

Decisions (documented here because the gateway relies on them):

* Text that does not fit is **wrapped at word boundaries onto the lines the template
  reserves (2 for a product name) and the last line is truncated with "..."**; a line
  never runs off the label. Width is estimated from the font's character width (ZPL
  scalable fonts are proportional: the estimate is conservative for Cyrillic capitals).
  Names above ``MAX_NAME`` characters are rejected: that is a data error, not a layout one.
* Text is UTF-8 under ``^CI28``. Every text field goes through ``^FH`` with ``_`` as the
  hex indicator, and ``^``, ``~`` and ``_`` in user text are hex-escaped, so data can
  never inject commands. Resident font ``0`` covers Cyrillic on Link-OS firmware; older
  firmware needs a Unicode font: pass ``LabelSize(font="E:TT0003M_.TTF")`` to emit
  ``^A@N,h,w,E:TT0003M_.TTF`` instead of ``^A0N,h,w`` [K: check on the store's printers].
* EAN-13 goes to ``^BE`` with 12 digits: the printer adds the check digit; we compute it
  too to validate 13-digit input and for the weight barcode.
  The check digit below is a minimal local copy until ``protocols/barcodes`` lands.
* Marking codes go to ``^BXN,m,200,,,,_`` (ECC 200, escape character ``_`` set explicitly
  because the firmware default varies): ``_1`` first = FNC1 (GS1 DataMatrix), each GS
  in the code = ``_1``, a literal ``_`` = ``_d095``. No ``^FH`` on that field (the manual:
  ``^FH`` processing would run before the escape processing).
* Copies: one ``^PQn`` batch per label; the printer reports the batch countdown as
  "labels remaining" in ``~HS``.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Final

from protocols.barcodes.gtin import check_digit
from protocols.zpl.errors import LocalProtocolError, TemplateDataError

MAX_NAME: Final = 128
MAX_COPIES: Final = 99_999_999  # ^PQ quantity limit
GS: Final = "\x1d"
KOPECK: Final = Decimal("0.01")
GRAM: Final = Decimal("0.001")


class Template(StrEnum):
    PRICE_TAG = "price_tag"
    WEIGHED = "weighed"
    MARKING = "marking"


# --- label geometry ------------------------------------------------------------------


@dataclass(frozen=True)
class LabelSize:
    """Label stock in millimetres and the printer's resolution (203 or 300 dpi)."""

    width_mm: int = 58
    height_mm: int = 40
    dpi: int = 203
    font: str = "0"

    def __post_init__(self) -> None:
        if self.dpi not in (203, 300):
            raise LocalProtocolError(f"dpi {self.dpi}: ожидается 203 или 300")
        if not (20 <= self.width_mm <= 118 and 15 <= self.height_mm <= 300):
            raise LocalProtocolError(
                f"размер этикетки {self.width_mm}×{self.height_mm} мм вне 20–118 × 15–300 мм"
            )
        if not self.font or any(c in self.font for c in "^~,"):
            raise LocalProtocolError(f"недопустимое имя шрифта {self.font!r}")

    @property
    def dots_per_mm(self) -> int:
        return 8 if self.dpi == 203 else 12

    def dots(self, mm: float) -> int:
        return round(mm * self.dots_per_mm)

    @property
    def width_dots(self) -> int:
        return self.dots(self.width_mm)

    @property
    def height_dots(self) -> int:
        return self.dots(self.height_mm)


# --- small helpers -------------------------------------------------------------------


def ean_check_digit(digits: str) -> int:
    """GS1 mod-10 check digit of ``digits`` (one implementation: ``protocols.barcodes``)."""
    return check_digit(digits)


def _money(value: Decimal) -> str:
    q = value.quantize(KOPECK, rounding=ROUND_HALF_UP)
    rub, kop = f"{q:.2f}".split(".")
    groups = f"{int(rub):,}".replace(",", " ")
    return f"{groups},{kop}"


def _weight(value: Decimal) -> str:
    return f"{value.quantize(GRAM, rounding=ROUND_HALF_UP):.3f}".replace(".", ",")


def _require(data: Mapping[str, object], key: str) -> object:
    if key not in data or data[key] is None or data[key] == "":
        raise TemplateDataError(key, "обязательное поле не заполнено")
    return data[key]


def _text(data: Mapping[str, object], key: str, *, required: bool = True, default: str = "") -> str:
    if not required and (key not in data or data[key] in (None, "")):
        return default
    value = _require(data, key)
    if not isinstance(value, str):
        raise TemplateDataError(key, f"ожидается строка, получено {type(value).__name__}")
    return value


def _decimal(data: Mapping[str, object], key: str, *, required: bool = True) -> Decimal | None:
    if not required and (key not in data or data[key] in (None, "")):
        return None
    value = _require(data, key)
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal | float):
        raise TemplateDataError(key, "ожидается число")
    try:
        number = Decimal(str(value).replace(",", "."))
    except InvalidOperation as exc:
        raise TemplateDataError(key, f"не число: {value!r}") from exc
    if not number.is_finite():
        raise TemplateDataError(key, f"не число: {value!r}")
    return number


def _date(data: Mapping[str, object], key: str) -> dt.date:
    value = _require(data, key)
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            raise TemplateDataError(key, f"ожидается дата ГГГГ-ММ-ДД, получено {value!r}") from exc
    raise TemplateDataError(key, "ожидается дата ГГГГ-ММ-ДД")


def _clean_name(name: str, field: str = "name") -> str:
    name = " ".join(name.split())
    if not name:
        raise TemplateDataError(field, "пустое наименование")
    if len(name) > MAX_NAME:
        raise TemplateDataError(field, f"наименование длиннее {MAX_NAME} символов ({len(name)})")
    if any(ord(c) < 0x20 for c in name):
        raise TemplateDataError(field, "управляющие символы в тексте")
    return name


def _positive(value: Decimal, field: str, limit: Decimal) -> Decimal:
    if value <= 0:
        raise TemplateDataError(field, "должно быть больше нуля")
    if value > limit:
        raise TemplateDataError(field, f"больше {limit}")
    return value


def _ean13(value: str, field: str) -> str:
    """Validate a 12- or 13-digit EAN-13 and return the 13 digits."""
    digits = value.strip()
    if not digits.isascii() or not digits.isdigit() or len(digits) not in (12, 13):
        raise TemplateDataError(field, f"EAN-13: ожидается 12 или 13 цифр, получено {value!r}")
    if len(digits) == 12:
        return digits + str(ean_check_digit(digits))
    if ean_check_digit(digits[:12]) != int(digits[12]):
        raise TemplateDataError(field, f"EAN-13 {digits}: неверная контрольная цифра")
    return digits


# --- label data ----------------------------------------------------------------------


@dataclass(frozen=True)
class PriceTag:
    """Ценник: name, price per unit, optional price per kg, unit, optional EAN-13."""

    name: str
    price: Decimal
    unit: str = "шт"
    price_per_kg: Decimal | None = None
    barcode: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _clean_name(self.name))
        _positive(self.price, "price", Decimal("9999999.99"))
        if self.price_per_kg is not None:
            _positive(self.price_per_kg, "price_per_kg", Decimal("9999999.99"))
        if not self.unit.strip() or len(self.unit) > 8:
            raise TemplateDataError("unit", "единица измерения: 1–8 символов")
        if self.barcode is not None:
            object.__setattr__(self, "barcode", _ean13(self.barcode, "barcode"))

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> PriceTag:
        price = _decimal(data, "price")
        assert price is not None
        barcode = _text(data, "barcode", required=False) or None
        return cls(
            name=_text(data, "name"),
            price=price,
            unit=_text(data, "unit", required=False, default="шт"),
            price_per_kg=_decimal(data, "price_per_kg", required=False),
            barcode=barcode,
        )


@dataclass(frozen=True)
class WeighedLabel:
    """Этикетка весового товара with an EAN-13 weight barcode ``2X PPPPP WWWWW C``."""

    name: str
    weight_kg: Decimal
    price_per_kg: Decimal
    packed: dt.date
    best_before: dt.date
    item_code: int
    prefix: str = "22"

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _clean_name(self.name))
        _positive(self.weight_kg, "weight_kg", Decimal("99.999"))
        if self.weight_kg.quantize(GRAM) != self.weight_kg:
            raise TemplateDataError("weight_kg", "масса задаётся с точностью до грамма")
        _positive(self.price_per_kg, "price_per_kg", Decimal("9999999.99"))
        if self.best_before < self.packed:
            raise TemplateDataError("best_before", "срок годности раньше даты упаковки")
        if not 0 <= self.item_code <= 99999:
            raise TemplateDataError("item_code", "код товара весов: 0–99999")
        if len(self.prefix) != 2 or not self.prefix.isdigit() or self.prefix[0] != "2":
            raise TemplateDataError("prefix", "префикс весового штрихкода: 20–29")

    @property
    def total(self) -> Decimal:
        return (self.weight_kg * self.price_per_kg).quantize(KOPECK, rounding=ROUND_HALF_UP)

    @property
    def barcode(self) -> str:
        grams = int(self.weight_kg * 1000)
        body = f"{self.prefix}{self.item_code:05d}{grams:05d}"
        return body + str(ean_check_digit(body))

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> WeighedLabel:
        weight = _decimal(data, "weight_kg")
        price = _decimal(data, "price_per_kg")
        assert weight is not None and price is not None
        code = _require(data, "item_code")
        if isinstance(code, bool) or not isinstance(code, int | str) or not str(code).isdigit():
            raise TemplateDataError("item_code", f"ожидается целое число, получено {code!r}")
        label = cls(
            name=_text(data, "name"),
            weight_kg=weight,
            price_per_kg=price,
            packed=_date(data, "packed"),
            best_before=_date(data, "best_before"),
            item_code=int(code),
            prefix=_text(data, "prefix", required=False, default="22"),
        )
        total = _decimal(data, "total", required=False)
        if total is not None and total.quantize(KOPECK) != label.total:
            raise TemplateDataError("total", f"стоимость {total} не равна масса × цена = {label.total}")
        return label


@dataclass(frozen=True)
class MarkingCode:
    """A Честный знак GS1 code as scanned: ``01`` GTIN(14) ``21`` serial, GS-separated tail."""

    raw: str

    def __post_init__(self) -> None:
        raw = self.raw
        if raw.startswith("]d2"):  # AIM symbology identifier a scanner may prepend
            raw = raw[3:]
        raw = raw.lstrip(GS)
        object.__setattr__(self, "raw", raw)
        if not raw.startswith("01") or len(raw) < 18 or not raw[2:16].isdigit():
            raise TemplateDataError("code", "код маркировки должен начинаться с 01 и 14 цифр GTIN")
        if ean_check_digit(raw[2:15]) != int(raw[15]):
            raise TemplateDataError("code", f"GTIN {raw[2:16]}: неверная контрольная цифра")
        if raw[16:18] != "21":
            raise TemplateDataError("code", "после GTIN ожидается идентификатор 21 (серийный номер)")
        for ch in raw:
            if (ch != GS and not (0x21 <= ord(ch) <= 0x7E)) or ch in "^~":
                raise TemplateDataError("code", f"недопустимый символ {ch!r} в коде маркировки")
        if len(raw) > 150:
            raise TemplateDataError("code", "код маркировки длиннее 150 символов")
        if not self.serial:
            raise TemplateDataError("code", "пустой серийный номер")

    @property
    def gtin(self) -> str:
        return self.raw[2:16]

    @property
    def serial(self) -> str:
        return self.raw[18:].split(GS, 1)[0]

    def zpl_data(self) -> str:
        """Field data for ``^BX…,_``: FNC1 first, GS → FNC1, ``_`` → ``_d095``."""
        return "_1" + self.raw.replace("_", "_d095").replace(GS, "_1")


@dataclass(frozen=True)
class MarkingLabel:
    """Этикетка маркировки: name, GS1 DataMatrix, GTIN and serial human-readable."""

    name: str
    code: MarkingCode

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _clean_name(self.name))

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> MarkingLabel:
        return cls(name=_text(data, "name"), code=MarkingCode(_text(data, "code")))


Label = PriceTag | WeighedLabel | MarkingLabel

_BUILDERS: Final[dict[Template, Callable[[Mapping[str, object]], Label]]] = {
    Template.PRICE_TAG: PriceTag.from_mapping,
    Template.WEIGHED: WeighedLabel.from_mapping,
    Template.MARKING: MarkingLabel.from_mapping,
}


def build_label(template: Template | str, data: Mapping[str, object]) -> Label:
    """Validate bus data for ``template``; ``TemplateDataError`` names the bad field."""
    try:
        kind = Template(template)
    except ValueError as exc:
        known = ", ".join(t.value for t in Template)
        raise TemplateDataError("template", f"неизвестный шаблон {template!r} (есть: {known})") from exc
    return _BUILDERS[kind](data)


# --- ZPL writer ----------------------------------------------------------------------


def escape_field(text: str) -> str:
    """Hex-escape the characters ZPL would read as commands (for ``^FH`` with ``_``)."""
    return text.replace("_", "_5F").replace("^", "_5E").replace("~", "_7E")


class _Writer:
    def __init__(self, size: LabelSize) -> None:
        self.size = size
        self.parts: list[str] = []

    def font(self, height_mm: float) -> tuple[str, int]:
        h = self.size.dots(height_mm)
        if self.size.font == "0" or len(self.size.font) == 1:
            return f"^A{self.size.font}N,{h},{h}", h
        return f"^A@N,{h},{h},{self.size.font}", h

    def text(self, x_mm: float, y_mm: float, height_mm: float, text: str) -> None:
        font, _ = self.font(height_mm)
        x, y = self.size.dots(x_mm), self.size.dots(y_mm)
        self.parts.append(f"^FO{x},{y}{font}^FH_^FD{escape_field(text)}^FS")

    def fitted(self, x_mm: float, y_mm: float, height_mm: float, width_mm: float, text: str) -> None:
        """One line, its font shrunk (down to 2 mm) until ``text`` fits ``width_mm``."""
        height = min(height_mm, max(2.0, width_mm / (max(len(text), 1) * 0.6)))
        self.text(x_mm, y_mm + (height_mm - height), height, text)

    def wrapped(
        self, x_mm: float, y_mm: float, height_mm: float, width_mm: float, text: str, lines: int
    ) -> float:
        """Write ``text`` on up to ``lines`` lines; returns the y below the last line."""
        # Scalable font 0 averages ~0.6 of the height per character: budget on that.
        per_line = max(4, int(width_mm / (height_mm * 0.6)))
        chunks = textwrap.wrap(text, per_line, break_long_words=True) or [""]
        if len(chunks) > lines:
            rest = " ".join(chunks[lines - 1 :])
            cut = rest[: per_line - 3]
            if " " in cut.strip():  # end on a whole word when the line has one
                cut = cut.rstrip().rsplit(" ", 1)[0]
            chunks = [*chunks[: lines - 1], cut.rstrip(" ,;:-") + "..."]
        for i, chunk in enumerate(chunks):
            self.text(x_mm, y_mm + i * height_mm * 1.15, height_mm, chunk)
        return y_mm + len(chunks) * height_mm * 1.15

    def ean13(self, x_mm: float, y_mm: float, height_mm: float, digits13: str) -> None:
        module = 2 if self.size.dpi == 203 else 3
        x, y, h = self.size.dots(x_mm), self.size.dots(y_mm), self.size.dots(height_mm)
        self.parts.append(f"^FO{x},{y}^BY{module}^BEN,{h},Y,N^FD{digits13[:12]}^FS")

    def datamatrix(self, x_mm: float, y_mm: float, module_mm: float, data: str) -> None:
        x, y = self.size.dots(x_mm), self.size.dots(y_mm)
        m = max(2, self.size.dots(module_mm))
        self.parts.append(f"^FO{x},{y}^BXN,{m},200,,,,_^FD{data}^FS")

    def box(self, x_mm: float, y_mm: float, w_mm: float, h_mm: float, thickness: int = 2) -> None:
        d = self.size.dots
        self.parts.append(f"^FO{d(x_mm)},{d(y_mm)}^GB{d(w_mm)},{d(h_mm)},{thickness}^FS")

    def finish(self, copies: int) -> bytes:
        head = f"^XA^CI28^PW{self.size.width_dots}^LL{self.size.height_dots}^LH0,0"
        return (head + "".join(self.parts) + f"^PQ{copies}^XZ").encode("utf-8")


def _price_tag(w: _Writer, tag: PriceTag) -> None:
    s = w.size
    margin = 2.0
    usable = s.width_mm - 2 * margin
    y = w.wrapped(margin, margin, 3.5, usable, tag.name, 2)
    w.box(margin, y + 0.5, usable, 0.3, 2)
    w.fitted(margin, y + 2, 9.0, usable, _money(tag.price))
    w.text(margin, y + 11.5, 3.0, f"руб./{tag.unit}")
    if tag.price_per_kg is not None:
        w.fitted(
            s.width_mm / 2 - 4, y + 11.5, 3.0, s.width_mm / 2 + 2, f"1 кг: {_money(tag.price_per_kg)} руб."
        )
    if tag.barcode is not None:
        w.ean13(margin, min(y + 15.5, s.height_mm - 11), 7.0, tag.barcode)


def _weighed(w: _Writer, label: WeighedLabel) -> None:
    s = w.size
    margin = 2.0
    usable = s.width_mm - 2 * margin
    y = w.wrapped(margin, margin, 3.5, usable, label.name, 2)
    rows = [
        f"Масса нетто: {_weight(label.weight_kg)} кг",
        f"Цена за 1 кг: {_money(label.price_per_kg)} руб.",
        f"Упаковано: {label.packed:%d.%m.%Y}",
        f"Годен до: {label.best_before:%d.%m.%Y}",
    ]
    for i, row in enumerate(rows):
        w.text(margin, y + 0.5 + i * 3.5, 2.8, row)
    y += 0.5 + len(rows) * 3.5
    w.fitted(margin, y + 0.5, 5.0, usable, f"Стоимость: {_money(label.total)} руб.")
    w.ean13(margin, min(y + 6.5, s.height_mm - 11), 7.0, label.barcode)


def _marking(w: _Writer, label: MarkingLabel) -> None:
    s = w.size
    margin = 2.0
    y = w.wrapped(margin, margin, 3.2, s.width_mm - 2 * margin, label.name, 2)
    w.datamatrix(margin, y + 1, 0.5, label.code.zpl_data())
    x = margin + 22
    w.text(x, y + 2, 2.6, "(01)")
    w.text(x, y + 5, 2.6, label.code.gtin)
    w.text(x, y + 9, 2.6, "(21)")
    w.text(x, y + 12, 2.6, label.code.serial)


def render_label(label: Label, size: LabelSize | None = None, copies: int = 1) -> bytes:
    """The ZPL format for ``label``: ``^XA ^CI28 ^PW ^LL … ^PQcopies ^XZ`` (UTF-8 bytes)."""
    if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= MAX_COPIES:
        raise TemplateDataError("copies", f"число копий: 1–{MAX_COPIES}")
    size = size or (LabelSize(58, 60) if isinstance(label, WeighedLabel) else LabelSize())
    w = _Writer(size)
    if isinstance(label, PriceTag):
        _price_tag(w, label)
    elif isinstance(label, WeighedLabel):
        _weighed(w, label)
    else:
        _marking(w, label)
    return w.finish(copies)
