"""Честный знак marking codes (КМ): parse what a 2D scanner sends into a ``MarkingCode``.

Shapes recognised (GS = ``\\x1d``, the FNC1 separator after a variable-length field)::

    full (shoes, clothes, tyres, perfume…)  01 GTIN14  21 serial13  GS 91 key4  GS 92 code44
    short (milk, water, beer…)              01 GTIN14  21 serial    GS 93 crypto4 [GS 3103 kg×1000]
    tobacco block                           01 GTIN14  21 serial7   GS 8005 MRP6  GS 93 crypto4
    tobacco pack (29 chars, no AIs)         GTIN14 serial7 MRP4 crypto4
    aggregate (box / pallet)                00 SSCC18                  → ``AggregateCode``

GS1 element strings are split by ``biip`` when the separators survived the scanner. Scanners
transmit FNC1 in several ways; we accept: a leading AIM symbology identifier (``]d2`` GS1
DataMatrix, ``]C1``, ``]Q3``, ``]e0``), a leading FNC1/GS, FNC1 as ``\\xe8`` (byte 232, what
some keyboard wedges send) or as the control-picture ``␝``. When every GS
was lost (a wedge in a layout that drops Ctrl+]), the known fixed-length tails above are
matched from the right (``gs_restored`` is then true) — a serial that itself ends like a tail
could be split wrongly, so a scanner that keeps GS is still what a store should configure.

``fiscal`` is the form the fiscal register (tags 2000/1163, Shtrih FF61/FF67) takes: GTIN,
serial and crypto tail with GS kept (``01…21…GS91…GS92…`` / ``01…21…GS93…``; the pack code
as is); informational AIs (3103 weight, 17 expiry, 10 batch) are kept in ``extra`` only.

``kind`` is inferred from the structure where it is unambiguous: 29-char and 8005 codes are
tobacco; a 93 tail with a 6-char serial is milk, 13 chars water, 7 chars beer (serial lengths
from the product-group rules, marked [K] in the reference notes); 91/92 codes are ``OTHER``
(shoes, clothes, tyres and perfume share that shape: the product group is not in the code).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from biip import ParseConfig, ParseError
from biip.gs1_messages import GS1Message

from protocols.barcodes.errors import BadCharacters, BadCheckDigit, BadLength, InvalidBarcode, MissingElement
from protocols.barcodes.gtin import Symbology, has_valid_check_digit, validate

GS = "\x1d"
_BIIP = ParseConfig(separator_chars=(GS,))
_AIM_IDS = ("]d2", "]C1", "]Q3", "]e0", "]d1", "]Q1")
_FNC1_FORMS = ("\xe8", "\u241d")
"""FNC1/GS stand-ins outside the GS1 character set, so replacing them never alters data.
(The text ``<GS>`` is *not* accepted: ``<``, ``>`` and letters are valid serial characters.)"""
_TOBACCO_PACK = re.compile(r"(\d{14})([\x21-\x7e]{7})([\x21-\x7e]{4})([\x21-\x7e]{4})")
_SSCC = re.compile(r"00(\d{18})")
MAX_LENGTH = 300
"""Longer strings are not marking codes (a full code with an 88-char AI 92 is ~130 chars)."""

# Tails matched from the right when the separators were lost: (regex, AIs in order).
_GSLESS_TAILS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"91([\x21-\x7e]{4})92([\x21-\x7e]{44})"), ("91", "92")),
    (re.compile(r"91([\x21-\x7e]{4})92([\x21-\x7e]{88})"), ("91", "92")),
    (re.compile(r"8005(\d{6})93([\x21-\x7e]{4})"), ("8005", "93")),
    (re.compile(r"93([\x21-\x7e]{4})3103(\d{6})"), ("93", "3103")),
    (re.compile(r"93([\x21-\x7e]{4})"), ("93",)),
)
_SERIAL_LENGTHS = (13, 6, 7, 20, 8, 11, 12)


class ProductKind(StrEnum):
    MILK = "milk"
    WATER = "water"
    BEER = "beer"
    TOBACCO = "tobacco"
    SHOES = "shoes"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class MarkingCode:
    """One unit's marking code, validated. ``raw`` is exactly what the scanner sent."""

    raw: str
    gtin: str
    serial: str
    kind: ProductKind
    verification_key: str | None = None
    """AI 91 (4 chars) of a full code."""
    verification_code: str | None = None
    """AI 92 (44 chars, base64) of a full code."""
    crypto_tail: str | None = None
    """AI 93 (4 chars) of a short code, or the last 4 chars of a tobacco pack code."""
    mrp: str | None = None
    """Maximum retail price: AI 8005 (kopecks, 6 digits) or the pack code's 4 encoded chars."""
    extra: tuple[tuple[str, str], ...] = field(default=())
    """Other AIs, in order (3103 weight, 17 expiry, 10 batch…)."""
    gs_restored: bool = False
    """True if the scanner lost the GS separators and the split was inferred."""
    tobacco_pack: bool = False

    def __post_init__(self) -> None:
        validate(self.gtin, Symbology.ITF14)
        if not self.serial:
            raise MissingElement("В коде маркировки нет серийного номера (AI 21)", self.raw)
        if self.tobacco_pack:
            return
        if self.crypto_tail is None and (self.verification_key is None or self.verification_code is None):
            raise MissingElement("В коде маркировки нет кода проверки (AI 91+92 или AI 93)", self.raw)
        for ai, value, lengths in (
            ("91", self.verification_key, (4,)),
            ("92", self.verification_code, (44, 88)),
            ("93", self.crypto_tail, (4,)),
        ):
            if value is not None and len(value) not in lengths:
                raise BadLength(
                    f"Поле AI {ai} кода маркировки длиной {len(value)}, ожидается {' или '.join(map(str, lengths))}",
                    self.raw,
                )

    @property
    def identity(self) -> str:
        """The identification code (КИ) without the crypto part: a key to find duplicates."""
        if self.tobacco_pack:
            return self.gtin + self.serial
        return f"01{self.gtin}21{self.serial}"

    @property
    def fiscal(self) -> str:
        """The code as the fiscal register takes it (see the module docstring)."""
        if self.tobacco_pack:
            return f"{self.gtin}{self.serial}{self.mrp or ''}{self.crypto_tail or ''}"
        out = f"01{self.gtin}21{self.serial}"
        if self.mrp is not None:
            out += f"{GS}8005{self.mrp}"
        if self.verification_key is not None:
            out += f"{GS}91{self.verification_key}{GS}92{self.verification_code}"
        if self.crypto_tail is not None:
            out += f"{GS}93{self.crypto_tail}"
        return out

    @property
    def weight_kg(self) -> Decimal | None:
        """The net weight of a weighed unit (AI 3103: kg with 3 decimals), if present."""
        for ai, value in self.extra:
            if ai == "3103":
                return (Decimal(int(value)) / 1000).quantize(Decimal("0.001"))
        return None


@dataclass(frozen=True, slots=True)
class AggregateCode:
    """A box/pallet code (SSCC, AI 00): it stands for the units packed in it."""

    raw: str
    sscc: str


def normalize_scan(raw: str) -> str:
    """Strip the symbology identifier, line ends and the leading FNC1; map FNC1 forms to GS."""
    text = raw.strip("\r\n")
    for aim in _AIM_IDS:
        if text.startswith(aim):
            text = text[len(aim) :]
            break
    for form in _FNC1_FORMS:
        text = text.replace(form, GS)
    text = text.lstrip(GS).rstrip(GS)
    return text


def _check_chars(text: str, raw: str) -> None:
    for ch in text:
        if ch != GS and not ("\x21" <= ch <= "\x7e"):
            raise BadCharacters(f"Недопустимый символ {ch!r} в коде маркировки", raw)


def parse_marking(raw: str) -> MarkingCode | AggregateCode:
    """Parse a scanned marking code; raises ``InvalidBarcode`` subclasses with the reason."""
    if len(raw) > MAX_LENGTH:
        raise BadLength(f"Строка длиной {len(raw)} — не код маркировки", raw[:64])
    text = normalize_scan(raw)
    if not text:
        raise BadLength("Пустой код маркировки", raw)
    _check_chars(text, raw)
    if (m := _SSCC.fullmatch(text)) is not None:
        return AggregateCode(raw, validate(m.group(1), Symbology.SSCC))
    if GS not in text and (m := _TOBACCO_PACK.fullmatch(text)) is not None:
        gtin = m.group(1)
        if not has_valid_check_digit(gtin):
            raise BadCheckDigit(f"Неверная контрольная цифра GTIN {gtin} в коде пачки", raw)
        return MarkingCode(
            raw, gtin, m.group(2), ProductKind.TOBACCO, crypto_tail=m.group(4), mrp=m.group(3), tobacco_pack=True
        )
    if not text.startswith("01"):
        if len(text) == 29:
            raise BadCheckDigit("Код пачки табака из 29 символов должен начинаться с GTIN из 14 цифр", raw)
        raise MissingElement("Код маркировки должен начинаться с AI 01 (GTIN)", raw)
    if GS in text:
        elements, restored = _split_gs1(text, raw), False
    else:
        elements, restored = _split_without_gs(text, raw), True
    return _build(raw, elements, restored)


def _split_gs1(text: str, raw: str) -> list[tuple[str, str]]:
    try:
        message = GS1Message.parse(text, config=_BIIP)
    except ParseError as exc:
        raise InvalidBarcode(f"Код маркировки не разбирается как GS1: {exc}", raw) from exc
    return [(es.ai.ai, es.value) for es in message.element_strings]


def _split_without_gs(text: str, raw: str) -> list[tuple[str, str]]:
    head = text[:16]
    if len(text) < 18 or not head[2:].isdigit():
        raise BadLength("Код маркировки короче GTIN", raw)
    rest = text[16:]
    if not rest.startswith("21"):
        raise MissingElement("В коде маркировки нет серийного номера (AI 21)", raw)
    body = rest[2:]
    for serial_len in _SERIAL_LENGTHS:
        tail = body[serial_len:]
        for pattern, ais in _GSLESS_TAILS:
            if (m := pattern.fullmatch(tail)) is not None:
                return [("01", head[2:]), ("21", body[:serial_len]), *zip(ais, m.groups(), strict=True)]
    raise MissingElement(
        "Код маркировки без разделителей GS: не найден код проверки (AI 91/92 или 93); "
        "настройте сканер передавать FNC1 как GS (0x1D)",
        raw,
    )


def _build(raw: str, elements: list[tuple[str, str]], restored: bool) -> MarkingCode:
    fields: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    for ai, value in elements:
        if ai in ("01", "21", "91", "92", "93", "8005"):
            if ai in fields:
                raise InvalidBarcode(f"AI {ai} повторяется в коде маркировки", raw)
            fields[ai] = value
        else:
            extra.append((ai, value))
    gtin = fields.get("01")
    if gtin is None:
        raise MissingElement("В коде маркировки нет GTIN (AI 01)", raw)
    if not has_valid_check_digit(gtin):
        raise BadCheckDigit(f"Неверная контрольная цифра GTIN {gtin} в коде маркировки", raw)
    serial = fields.get("21")
    if serial is None:
        raise MissingElement("В коде маркировки нет серийного номера (AI 21)", raw)
    return MarkingCode(
        raw=raw,
        gtin=gtin,
        serial=serial,
        kind=_infer_kind(fields, serial),
        verification_key=fields.get("91"),
        verification_code=fields.get("92"),
        crypto_tail=fields.get("93"),
        mrp=fields.get("8005"),
        extra=tuple(extra),
        gs_restored=restored,
    )


def _infer_kind(fields: dict[str, str], serial: str) -> ProductKind:
    if "8005" in fields:
        return ProductKind.TOBACCO
    if "93" in fields and "91" not in fields:
        return {6: ProductKind.MILK, 13: ProductKind.WATER, 7: ProductKind.BEER}.get(len(serial), ProductKind.OTHER)
    return ProductKind.OTHER


def encode_marking(code: MarkingCode) -> str:
    """The GS-separated element string of ``code`` (``fiscal`` plus the ``extra`` AIs)."""
    out = code.fiscal
    for ai, value in code.extra:
        out += f"{GS}{ai}{value}"
    return out
