"""Symbologies and AIM symbology identifiers (ISO/IEC 15424), the 3-character prefix a
scanner puts before the data when "AIM ID" transmission is on::

    ]  c  m        e.g.  ]E0  EAN-13 / UPC-A        ]E4  EAN-8
    │  │  └ modifier         ]C0  Code 128            ]C1  GS1-128 (FNC1 first)
    │  └ code character      ]d1  Data Matrix         ]d2  GS1 DataMatrix (Честный знак)
    └ flag character         ]Q1  QR Code (model 2)   ]Q3  GS1 QR Code
                             ]e0  GS1 DataBar         ]I0  Interleaved 2 of 5

For the GS1 variants the leading FNC1 is *implied* by the identifier and not transmitted; the
FNC1s that end variable-length fields arrive as GS (0x1D). Unknown code characters map to
``Symbology.UNKNOWN`` and keep their identifier, so nothing is refused for being new.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocols.scanner.errors import ScannerProtocolError


class Symbology(StrEnum):
    EAN13 = "EAN-13"
    EAN8 = "EAN-8"
    UPCA = "UPC-A"
    UPCE = "UPC-E"
    EAN_ADDON = "EAN/UPC + add-on"
    CODE128 = "Code 128"
    GS1_128 = "GS1-128"
    CODE39 = "Code 39"
    CODE93 = "Code 93"
    CODE11 = "Code 11"
    CODABAR = "Codabar"
    ITF = "Interleaved 2 of 5"
    MSI = "MSI"
    DATAMATRIX = "Data Matrix"
    GS1_DATAMATRIX = "GS1 DataMatrix"
    QR = "QR Code"
    GS1_QR = "GS1 QR Code"
    PDF417 = "PDF417"
    AZTEC = "Aztec"
    GS1_DATABAR = "GS1 DataBar"
    OTHER = "other"
    """A symbology the scanner itself calls "other" (AIM ``]X``) or keyboard entry (``]Z``)."""
    UNKNOWN = "unknown"
    """No identifier was sent and the data does not tell, or an identifier we do not know."""


# code character → (symbology for any modifier, {modifier: symbology})
_AIM_TABLE: dict[str, tuple[Symbology, dict[str, Symbology]]] = {
    "A": (Symbology.CODE39, {}),
    "C": (Symbology.CODE128, {"1": Symbology.GS1_128}),
    "E": (
        Symbology.EAN13,
        {
            "0": Symbology.EAN13,
            "1": Symbology.EAN_ADDON,
            "2": Symbology.EAN_ADDON,
            "3": Symbology.EAN_ADDON,
            "4": Symbology.EAN8,
        },
    ),
    "F": (Symbology.CODABAR, {}),
    "G": (Symbology.CODE93, {}),
    "H": (Symbology.CODE11, {}),
    "I": (Symbology.ITF, {}),
    "L": (Symbology.PDF417, {}),
    "M": (Symbology.MSI, {}),
    "Q": (Symbology.QR, {"3": Symbology.GS1_QR}),
    "X": (Symbology.OTHER, {}),
    "Z": (Symbology.OTHER, {}),
    "d": (Symbology.DATAMATRIX, {"2": Symbology.GS1_DATAMATRIX}),
    "e": (Symbology.GS1_DATABAR, {}),
    "z": (Symbology.AZTEC, {}),
}

# What a scanner sends for each symbology (the simulator's side of the table).
AIM_FOR: dict[Symbology, str] = {
    Symbology.EAN13: "]E0",
    Symbology.UPCA: "]E0",
    Symbology.EAN8: "]E4",
    Symbology.UPCE: "]E0",
    Symbology.EAN_ADDON: "]E3",
    Symbology.CODE128: "]C0",
    Symbology.GS1_128: "]C1",
    Symbology.CODE39: "]A0",
    Symbology.CODE93: "]G0",
    Symbology.CODE11: "]H0",
    Symbology.CODABAR: "]F0",
    Symbology.ITF: "]I0",
    Symbology.MSI: "]M0",
    Symbology.DATAMATRIX: "]d1",
    Symbology.GS1_DATAMATRIX: "]d2",
    Symbology.QR: "]Q1",
    Symbology.GS1_QR: "]Q3",
    Symbology.PDF417: "]L0",
    Symbology.AZTEC: "]z0",
    Symbology.GS1_DATABAR: "]e0",
    Symbology.OTHER: "]X0",
}

_MODIFIERS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True, slots=True)
class AimId:
    """One AIM symbology identifier, e.g. ``AimId("d", "2")`` for ``]d2``."""

    code: str
    modifier: str

    def __post_init__(self) -> None:
        if len(self.code) != 1 or not self.code.isascii() or not self.code.isalpha():
            raise ScannerProtocolError(f"Недопустимый символ кода AIM {self.code!r}")
        if len(self.modifier) != 1 or self.modifier not in _MODIFIERS:
            raise ScannerProtocolError(f"Недопустимый модификатор AIM {self.modifier!r}")

    def __str__(self) -> str:
        return f"]{self.code}{self.modifier}"

    @property
    def symbology(self) -> Symbology:
        entry = _AIM_TABLE.get(self.code)
        if entry is None:
            return Symbology.UNKNOWN
        default, by_modifier = entry
        return by_modifier.get(self.modifier, default)


def parse_aim(head: bytes) -> AimId | None:
    """The identifier at the start of ``head`` (``]`` + letter + modifier), else ``None``."""
    if len(head) < 3 or head[0] != 0x5D:
        return None
    try:
        return AimId(chr(head[1]), chr(head[2]))
    except ScannerProtocolError:
        return None


def aim_for(symbology: Symbology) -> str:
    """The identifier a scanner sends for ``symbology`` (``]X0`` for ones without their own)."""
    return AIM_FOR.get(symbology, "]X0")
