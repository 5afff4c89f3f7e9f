"""Render a ZPL label format to a PNG a person can look at (Pillow).

Supports what our templates and common designs use: ``^FO ^LH ^A0/^A@ ^FH ^FD ^FS ^CI
^PW ^LL ^GB ^BY ^BE ^BC ^BX``. Text uses DejaVu Sans (Cyrillic) when the system has it,
else Pillow's default bitmap font (no Cyrillic: ``font_path`` reports which). EAN-13 is
drawn as real bars (L/G/R tables, parity from the first digit) with the human-readable
line; Code 128 and DataMatrix are drawn as labelled placeholder boxes with their data as
text (no pure-Python encoder in our dependencies; none added).
Unknown commands are skipped and reported in ``Rendered.unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from PIL import Image, ImageDraw, ImageFont

from protocols.zpl.commands import Command, decode_datamatrix_escapes, decode_field_text, unescape_field_hex

FONT_CANDIDATES: Final = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
)

KNOWN: Final = frozenset(
    {
        "FO",
        "LH",
        "A",
        "A@",
        "FH",
        "FD",
        "FS",
        "CI",
        "PW",
        "LL",
        "GB",
        "BY",
        "BE",
        "BC",
        "BX",
        "PQ",
        "FX",
        "FB",
    }
)

_L: Final = (
    "0001101",
    "0011001",
    "0010011",
    "0111101",
    "0100011",
    "0110001",
    "0101111",
    "0111011",
    "0110111",
    "0001011",
)
_G: Final = tuple(code.translate(str.maketrans("01", "10"))[::-1] for code in _L)
_R: Final = tuple(code.translate(str.maketrans("01", "10")) for code in _L)
_PARITY: Final = (
    "LLLLLL",
    "LLGLGG",
    "LLGGLG",
    "LLGGGL",
    "LGLLGG",
    "LGGLLG",
    "LGGGLL",
    "LGLGLG",
    "LGLGGL",
    "LGGLGL",
)


def find_font() -> str | None:
    for candidate in FONT_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return None


def ean13_check(digits12: str) -> int:
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(digits12))
    return (10 - total % 10) % 10


def ean13_modules(digits12: str) -> str:
    """The 95 modules (``1`` = bar) of the EAN-13 for 12 digits + computed check digit."""
    code = digits12 + str(ean13_check(digits12))
    parity = _PARITY[int(code[0])]
    left = "".join((_L if p == "L" else _G)[int(d)] for p, d in zip(parity, code[1:7], strict=True))
    right = "".join(_R[int(d)] for d in code[7:13])
    return "101" + left + "01010" + right + "101"


@dataclass
class Rendered:
    image: Image.Image
    texts: list[str] = field(default_factory=list)
    barcodes: list[tuple[str, str]] = field(default_factory=list)  # (symbology, data)
    unknown: list[str] = field(default_factory=list)
    copies: int = 1


@dataclass
class _Field:
    x: int = 0
    y: int = 0
    font_h: int = 30
    hex_indicator: bytes | None = None
    barcode: Command | None = None


class LabelRenderer:
    def __init__(self, width_dots: int = 464, height_dots: int = 320, font_path: str | None = None) -> None:
        self.default_size = (width_dots, height_dots)
        self.font_path = font_path if font_path is not None else find_font()
        self._fonts: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}

    def _font(self, height: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        height = max(6, min(height, 400))
        if height not in self._fonts:
            if self.font_path:
                self._fonts[height] = ImageFont.truetype(self.font_path, height)
            else:
                self._fonts[height] = ImageFont.load_default()
        return self._fonts[height]

    def render(self, commands: tuple[Command, ...]) -> Rendered:
        width, height = self.default_size
        for c in commands:
            if c.name == "PW":
                width = max(8, min(c.int_arg(0, width), 4000))
            elif c.name == "LL":
                height = max(8, min(c.int_arg(0, height), 8000))
        image = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(image)
        out = Rendered(image)
        home_x = home_y = 0
        charset = 0
        module, bar_h = 2, 10
        f = _Field()
        for c in commands:
            name = c.name
            if name not in KNOWN:
                out.unknown.append(c.code)
            if name == "LH":
                home_x, home_y = c.int_arg(0, 0), c.int_arg(1, 0)
            elif name == "CI":
                charset = c.int_arg(0, 0)
            elif name == "FO":
                f.x, f.y = home_x + c.int_arg(0, 0), home_y + c.int_arg(1, 0)
            elif name == "A":
                f.font_h = c.int_arg(1, f.font_h)  # params: font+orientation, h, w
            elif name == "A@":
                f.font_h = c.int_arg(1, f.font_h)
            elif name == "FH":
                f.hex_indicator = (c.arg(0, "_") or "_").encode("latin-1")[:1]
            elif name == "BY":
                module, bar_h = c.int_arg(0, module), c.int_arg(2, bar_h)
            elif name in ("BE", "BC", "BX"):
                f.barcode = c
            elif name == "GB":
                w, h, t = c.int_arg(0, 1), c.int_arg(1, 1), max(1, c.int_arg(2, 1))
                w, h = max(w, t), max(h, t)
                draw.rectangle((f.x, f.y, f.x + w - 1, f.y + h - 1), outline=0, width=t)
            elif name == "PQ":
                out.copies = max(1, c.int_arg(0, 1))
            elif name == "FD":
                data = c.params
                if f.hex_indicator is not None:
                    data = unescape_field_hex(data, f.hex_indicator)
                if f.barcode is None:
                    text = decode_field_text(data, charset)
                    out.texts.append(text)
                    draw.text((f.x, f.y), text, fill=0, font=self._font(f.font_h))
                else:
                    self._barcode(draw, out, f, data, module, bar_h)
            elif name == "FS":
                f = _Field(font_h=f.font_h)
        return out

    def _barcode(
        self, draw: ImageDraw.ImageDraw, out: Rendered, f: _Field, data: bytes, module: int, bar_h: int
    ) -> None:
        bc = f.barcode
        assert bc is not None
        if bc.name == "BE":
            digits = data.decode("latin-1")[:12]
            h = bc.int_arg(1, bar_h)
            if len(digits) != 12 or not digits.isdigit():
                out.barcodes.append(("EAN-13 INVALID", digits))
                draw.text((f.x, f.y), f"EAN-13? {digits}", fill=0, font=self._font(20))
                return
            code = digits + str(ean13_check(digits))
            out.barcodes.append(("EAN-13", code))
            module = max(1, module)
            for i, bit in enumerate(ean13_modules(digits)):
                if bit == "1":
                    x = f.x + (i + 9) * module  # quiet zone of 9 modules before the bars
                    draw.rectangle((x, f.y, x + module - 1, f.y + h), fill=0)
            if bc.arg(2, "Y").upper() == "Y":
                font = self._font(max(12, module * 9))
                draw.text((f.x, f.y + h + 2), code[0], fill=0, font=font)
                draw.text((f.x + 12 * module, f.y + h + 2), code[1:7], fill=0, font=font)
                draw.text((f.x + 58 * module, f.y + h + 2), code[7:], fill=0, font=font)
        elif bc.name == "BX":
            escape = (bc.arg(6, "_") or "_").encode("latin-1")[:1]
            gs1, content = decode_datamatrix_escapes(data, escape)
            text = content.decode("latin-1")
            out.barcodes.append(("GS1 DataMatrix" if gs1 else "DataMatrix", text))
            side = max(60, bc.int_arg(1, 4) * 24)
            draw.rectangle((f.x, f.y, f.x + side, f.y + side), outline=0, width=3)
            label = "GS1 DM" if gs1 else "DM"
            font = self._font(max(10, side // 7))
            draw.text((f.x + 6, f.y + 6), label, fill=0, font=font)
            shown = text.replace("\x1d", "|")
            lines = [shown[i : i + 10] for i in range(0, min(len(shown), 40), 10)]
            for i, line in enumerate(lines):
                draw.text(
                    (f.x + 6, f.y + 6 + (i + 1) * (side // 6)),
                    line,
                    fill=0,
                    font=self._font(max(8, side // 9)),
                )
        else:  # ^BC Code 128: placeholder box with its data
            text = data.decode("latin-1")
            out.barcodes.append(("Code128", text))
            h = bc.int_arg(1, bar_h)
            w = max(60, len(text) * 11 * module)
            draw.rectangle((f.x, f.y, f.x + w, f.y + h), outline=0, width=2)
            draw.text(
                (f.x + 4, f.y + 4), f"Code128: {text}", fill=0, font=self._font(max(10, min(h - 8, 24)))
            )
