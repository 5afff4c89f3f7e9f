"""Field codecs of Shtrih-M message bodies: little-endian integers, money, cp1251 text, dates.

Each codec validates a value when a message is built (``check`` raises ``ValueError``) and
reads itself from a body (``decode`` raises ``ValueError`` on short or bad bytes); messages
turn those into ``LocalProtocolError`` / ``MalformedMessage``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

ENCODING: Final = "cp1251"
MONEY_UNKNOWN: Final = 0xFF_FF_FF_FF_FF
"""``FF FF FF FF FF`` in FF46 sum/tax fields: "let the register compute it"."""


class Field:
    size: int | None = None  # None: takes the rest of the body

    def check(self, value: Any) -> None:
        raise NotImplementedError

    def encode(self, value: Any) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes, offset: int) -> tuple[Any, int]:
        raise NotImplementedError

    def _take(self, data: bytes, offset: int, size: int) -> bytes:
        chunk = data[offset : offset + size]
        if len(chunk) != size:
            raise ValueError(f"need {size} bytes at offset {offset}, have {len(chunk)}")
        return chunk


class UInt(Field):
    """Unsigned little-endian integer of ``size`` bytes (money: 5 bytes of kopecks)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.max = (1 << (8 * size)) - 1

    def check(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"integer expected, got {type(value).__name__}")
        if not 0 <= value <= self.max:
            raise ValueError(f"{value} does not fit {self.size} bytes (0..{self.max})")

    def encode(self, value: Any) -> bytes:
        return int(value).to_bytes(self.size or 0, "little")

    def decode(self, data: bytes, offset: int) -> tuple[Any, int]:
        size = self.size or 0
        return int.from_bytes(self._take(data, offset, size), "little"), offset + size


class SInt(UInt):
    """Signed little-endian integer (the legacy close's discount in hundredths of a per cent)."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.min, self.max = -(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1

    def check(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not self.min <= value <= self.max:
            raise ValueError(f"{value!r} does not fit a signed {self.size}-byte integer")

    def encode(self, value: Any) -> bytes:
        return int(value).to_bytes(self.size or 0, "little", signed=True)

    def decode(self, data: bytes, offset: int) -> tuple[Any, int]:
        size = self.size or 0
        return int.from_bytes(self._take(data, offset, size), "little", signed=True), offset + size


class Text(Field):
    """cp1251 text; fixed ``size`` zero-padded (``pad``), or the rest of the body up to ``limit``."""

    def __init__(self, size: int | None, *, limit: int | None = None, pad: bool = True) -> None:
        self.size = size if pad else None
        self.limit = size if size is not None else limit
        self.pad = pad

    def check(self, value: Any) -> None:
        if not isinstance(value, str):
            raise ValueError("text expected")
        try:
            raw = value.encode(ENCODING)
        except UnicodeEncodeError as exc:
            raise ValueError(f"text not representable in cp1251: {value!r}") from exc
        if self.limit is not None and len(raw) > self.limit:
            raise ValueError(f"text is {len(raw)} bytes in cp1251, limit {self.limit}")
        if b"\x00" in raw:
            raise ValueError("text must not contain NUL")

    def encode(self, value: Any) -> bytes:
        raw = str(value).encode(ENCODING)
        return raw.ljust(self.size, b"\x00") if self.size is not None else raw

    def decode(self, data: bytes, offset: int) -> tuple[Any, int]:
        raw = self._take(data, offset, self.size) if self.size is not None else data[offset:]
        if self.limit is not None and len(raw) > self.limit:
            raise ValueError(f"text longer than {self.limit} bytes")
        return raw.split(b"\x00", 1)[0].decode(ENCODING, errors="replace"), offset + len(raw)


class LegacyText(Text):
    """Text of the legacy 80h/82h/85h commands: "40 или до Y байт", the rest of the frame.

    The original layout is exactly 40 bytes, and that is what we send; newer firmware takes
    the text up to the print width, and vendor drivers send that width (OPOS
    ``WriteString(Text, PrintWidth)``, 48 on a Shtrih-M-01F; pyshtrih pads to
    ``max(width, 40)``). So the reader takes whatever length arrives, up to ``limit`` (128:
    the item name becomes tag 1030, at most 128 bytes).
    """

    def __init__(self, size: int = 40, *, limit: int = 128) -> None:
        super().__init__(None, limit=limit, pad=False)
        self.min_size = size

    def encode(self, value: Any) -> bytes:
        return str(value).encode(ENCODING).ljust(self.min_size, b"\x00")


class Ascii(Field):
    """Fixed-size ASCII (FN number: 16 characters)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def check(self, value: Any) -> None:
        if not isinstance(value, str) or not value.isascii() or len(value) > (self.size or 0):
            raise ValueError(f"ASCII text of at most {self.size} characters expected")

    def encode(self, value: Any) -> bytes:
        return str(value).encode("ascii").ljust(self.size or 0, b" ")

    def decode(self, data: bytes, offset: int) -> tuple[Any, int]:
        size = self.size or 0
        raw = self._take(data, offset, size)
        try:
            return raw.decode("ascii").rstrip(" \x00"), offset + size
        except UnicodeDecodeError as exc:
            raise ValueError("non-ASCII bytes in an ASCII field") from exc


class Tail(Field):
    """The raw rest of the body (TLV lists, document data)."""

    def __init__(self, limit: int = 255) -> None:
        self.limit = limit

    def check(self, value: Any) -> None:
        if not isinstance(value, bytes) or len(value) > self.limit:
            raise ValueError(f"bytes of at most {self.limit} expected")

    def encode(self, value: Any) -> bytes:
        return bytes(value)

    def decode(self, data: bytes, offset: int) -> tuple[Any, int]:
        return bytes(data[offset:]), len(data)


class Date3(Field):
    """DD MM YY (full status) or, with ``ymd``, YY MM DD (FN commands)."""

    size = 3

    def __init__(self, *, ymd: bool = False) -> None:
        self.ymd = ymd

    def check(self, value: Any) -> None:
        if not isinstance(value, dt.date) or not 2000 <= value.year <= 2099:
            raise ValueError("date in 2000..2099 expected")

    def encode(self, value: Any) -> bytes:
        d: dt.date = value
        parts = (d.year - 2000, d.month, d.day) if self.ymd else (d.day, d.month, d.year - 2000)
        return bytes(parts)

    def decode(self, data: bytes, offset: int) -> tuple[Any, int]:
        a, b, c = self._take(data, offset, 3)
        y, m, d = (a, b, c) if self.ymd else (c, b, a)
        return dt.date(2000 + y, m, d), offset + 3


class Time3(Field):
    """HH MM SS."""

    size = 3

    def check(self, value: Any) -> None:
        if not isinstance(value, dt.time):
            raise ValueError("time expected")

    def encode(self, value: Any) -> bytes:
        t: dt.time = value
        return bytes((t.hour, t.minute, t.second))

    def decode(self, data: bytes, offset: int) -> tuple[Any, int]:
        h, m, s = self._take(data, offset, 3)
        return dt.time(h, m, s), offset + 3


class DateTime5(Field):
    """YY MM DD HH MM (FN documents; seconds are not carried)."""

    size = 5

    def check(self, value: Any) -> None:
        if not isinstance(value, dt.datetime) or not 2000 <= value.year <= 2099:
            raise ValueError("datetime in 2000..2099 expected")

    def encode(self, value: Any) -> bytes:
        v: dt.datetime = value
        return bytes((v.year - 2000, v.month, v.day, v.hour, v.minute))

    def decode(self, data: bytes, offset: int) -> tuple[Any, int]:
        y, mo, d, h, mi = self._take(data, offset, 5)
        return dt.datetime(2000 + y, mo, d, h, mi), offset + 5


U8, U16, U32, MONEY = UInt(1), UInt(2), UInt(4), UInt(5)
