"""Line-based scanner output (RS-232, USB-CDC "virtual COM", keyboard wedge): framing
configuration, the sans-I/O decoder and the encoder a simulated scanner uses.

One scan on the wire::

    [prefix] [AIM id]  data (GS kept)  suffix         e.g.  ]d2 0104600439931256 21ABC123 GS 93XyZ1 CR
    │        │         │               └ CR, LF, CRLF, TAB, any bytes, or none (then a
    │        │         │                 silence longer than ``intercharacter_timeout`` ends it)
    │        │         └ GS = 0x1D, or a configured substitute (``~``, ``<GS>``) turned back into 0x1D
    │        └ ``]`` + code char + modifier when ``aim`` is on (see ``symbology``)
    └ configured bytes (STX, ``#``…), or none

Resynchronisation, since a scanner line has no checksum:

- with ``suffix`` CR, LF or CRLF any of the three ends a line (a scanner configured CRLF
  where the store wrote CR must not stick LFs to the next scan); empty lines are ignored;
- a line with control bytes other than GS, or without the configured prefix, is discarded
  whole (``BytesDiscarded``); bytes before the prefix are discarded and the rest kept;
- a partial line older than ``stale_timeout`` when new bytes arrive is discarded (line noise
  at plug-in, a half-sent scan before a reset) so it cannot stick to the next scan;
- a line longer than ``max_length`` is reported once and skipped to the next suffix (or
  gap), so the buffer never holds more than ``max_length`` bytes.

Time is passed in (``now``, seconds on any monotonic clock); the decoder never sleeps.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from protocols.scanner.errors import FramingConfigError
from protocols.scanner.symbology import AimId, parse_aim

GS: Final = b"\x1d"
CR: Final = b"\r"
LF: Final = b"\n"
CRLF: Final = b"\r\n"
TAB: Final = b"\t"
NEED_DATA: Final = "NEED_DATA"
"""``next_event`` has nothing to hand out until more bytes arrive (or time passes)."""

_NAMED: dict[str, bytes] = {
    "": b"",
    "NONE": b"",
    "CR": CR,
    "LF": LF,
    "CRLF": CRLF,
    "TAB": TAB,
    "STX": b"\x02",
    "ETX": b"\x03",
    "EOT": b"\x04",
    "ESC": b"\x1b",
    "GS": GS,
}
_LINE_ENDS: Final = (CR, LF, CRLF)
_HEAD: Final = 32
"""Bytes of a discarded chunk kept in the event (for a log line; the rest is counted)."""


def parse_control(text: str) -> bytes:
    """A prefix/suffix/substitute as written in a device config: a name (``CR``, ``LF``,
    ``CRLF``, ``TAB``, ``STX``, ``ETX``, ``NONE``…), ``\\xNN``/``\\r``/``\\n``/``\\t`` escapes, or
    literal ASCII text (``~``, ``<GS>``)."""
    named = _NAMED.get(text.strip().upper())
    if named is not None:
        return named
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "x" and i + 3 < len(text) and _is_hex(text[i + 2 : i + 4]):
                out.append(int(text[i + 2 : i + 4], 16))
                i += 4
                continue
            simple = {"r": 0x0D, "n": 0x0A, "t": 0x09, "\\": 0x5C}.get(nxt)
            if simple is not None:
                out.append(simple)
                i += 2
                continue
        if not ch.isascii():
            raise FramingConfigError(f"Префикс/суффикс сканера — только ASCII, а не {ch!r} в {text!r}")
        out.append(ord(ch))
        i += 1
    return bytes(out)


def _is_hex(pair: str) -> bool:
    return len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair)


@dataclass(frozen=True, slots=True)
class LineFraming:
    """How a scanner frames a scan on a byte stream (see the module docstring)."""

    prefix: bytes = b""
    suffix: bytes = CR
    aim: bool = False
    """The scanner sends an AIM symbology identifier before the data."""
    gs_substitute: bytes | None = None
    """What the scanner sends instead of GS (``b"~"``, ``b"<GS>"``); restored to 0x1D."""
    intercharacter_timeout: float = 0.1
    """Without a suffix: silence that ends a scan, seconds."""
    stale_timeout: float | None = 0.5
    """With a suffix: an unterminated line this old when new bytes come is discarded."""
    max_length: int = 4096
    """Longest raw line in bytes (prefix, AIM and substitutes included)."""

    def __post_init__(self) -> None:
        for name in ("prefix", "suffix"):
            value = getattr(self, name)
            if not isinstance(value, bytes):
                raise FramingConfigError(f"{name} сканера должен быть bytes, а не {type(value).__name__}")
        if self.suffix and self.prefix and self.suffix in self.prefix:
            raise FramingConfigError("Префикс сканера не может содержать суффикс")
        if self.gs_substitute is not None:
            if not isinstance(self.gs_substitute, bytes) or not self.gs_substitute:
                raise FramingConfigError("Замена GS должна быть непустой строкой байтов")
            if self.suffix and (self.suffix in self.gs_substitute or self.gs_substitute in self.suffix):
                raise FramingConfigError("Замена GS не может совпадать с суффиксом сканера")
        if not self.intercharacter_timeout > 0:
            raise FramingConfigError("Межсимвольный таймаут сканера должен быть > 0")
        if self.stale_timeout is not None and not self.stale_timeout > 0:
            raise FramingConfigError("Таймаут незавершённой строки сканера должен быть > 0")
        if self.max_length < 16:
            raise FramingConfigError("Максимальная длина строки сканера — не меньше 16 байт")

    @classmethod
    def from_names(
        cls,
        *,
        prefix: str = "",
        suffix: str = "CR",
        aim: bool = False,
        gs_substitute: str | None = None,
        intercharacter_timeout: float = 0.1,
        stale_timeout: float | None = 0.5,
        max_length: int = 4096,
    ) -> LineFraming:
        """Build from config spellings: ``LineFraming.from_names(suffix="CRLF", gs_substitute="<GS>")``."""
        return cls(
            prefix=parse_control(prefix),
            suffix=parse_control(suffix),
            aim=aim,
            gs_substitute=parse_control(gs_substitute) if gs_substitute else None,
            intercharacter_timeout=intercharacter_timeout,
            stale_timeout=stale_timeout,
            max_length=max_length,
        )

    @property
    def line_ends(self) -> bool:
        """CR, LF and CRLF are interchangeable terminators."""
        return self.suffix in _LINE_ENDS


@dataclass(frozen=True, slots=True)
class CodeScanned:
    """One scan: ``data`` with prefix, AIM id and suffix removed and GS restored to 0x1D."""

    data: bytes
    aim: AimId | None
    at: float
    """``now`` when the scan was complete."""


@dataclass(frozen=True, slots=True)
class BytesDiscarded:
    """Bytes that were not a scan; ``head`` is the first bytes of them, ``size`` all of them."""

    head: bytes
    size: int
    reason: str


ScannerEvent = CodeScanned | BytesDiscarded


class LineDecoder:
    """Bytes from a line-based scanner in, ``CodeScanned`` / ``BytesDiscarded`` events out."""

    def __init__(self, framing: LineFraming | None = None) -> None:
        self.framing = framing or LineFraming()
        self._buf = bytearray()
        self._events: deque[ScannerEvent] = deque()
        self._skipping = False
        self._last: float | None = None

    @property
    def buffered(self) -> int:
        """Bytes of the unterminated line held (for tests and diagnostics)."""
        return len(self._buf)

    def receive_data(self, data: bytes, now: float) -> None:
        """Add bytes that arrived at ``now``."""
        if not data:
            return
        self._expire(now)
        self._last = now
        self._buf += data
        if self.framing.suffix:
            self._split_lines(now)
        if len(self._buf) > self.framing.max_length:
            self._overflow()

    def next_event(self, now: float | None = None) -> ScannerEvent | str:
        """The next event, or ``NEED_DATA``. Pass ``now`` so a silence can end (or expire) a line."""
        if now is not None:
            self._expire(now)
        if self._events:
            return self._events.popleft()
        return NEED_DATA

    def deadline(self) -> float | None:
        """When ``next_event(now)`` may have something without new bytes (a gap ends a scan)."""
        if self._last is None or not (self._buf or self._skipping):
            return None
        if not self.framing.suffix:
            return self._last + self.framing.intercharacter_timeout
        if self.framing.stale_timeout is None:
            return None
        return self._last + self.framing.stale_timeout

    # --- internals -------------------------------------------------------------------------

    def _expire(self, now: float) -> None:
        if self._last is None or not (self._buf or self._skipping):
            return
        gap = now - self._last
        if not self.framing.suffix:
            if gap >= self.framing.intercharacter_timeout:
                line, skipping = bytes(self._buf), self._skipping
                self._buf.clear()
                self._skipping = False
                if not skipping:
                    self._line(line, self._last)
            return
        if self.framing.stale_timeout is not None and gap >= self.framing.stale_timeout:
            if self._buf and not self._skipping:
                self._discard(bytes(self._buf), "незавершённая строка (нет суффикса)")
            self._buf.clear()
            self._skipping = False

    def _find_end(self) -> tuple[int, int]:
        if self.framing.line_ends:
            cr = self._buf.find(CR)
            lf = self._buf.find(LF)
            ends = [i for i in (cr, lf) if i >= 0]
            if not ends:
                return -1, 0
            end = min(ends)
            size = 2 if self._buf[end : end + 2] == CRLF else 1
            return end, size
        return self._buf.find(self.framing.suffix), len(self.framing.suffix)

    def _split_lines(self, now: float) -> None:
        while True:
            end, size = self._find_end()
            if end < 0:
                return
            line = bytes(self._buf[:end])
            del self._buf[: end + size]
            if self._skipping:  # the rest of a line already reported as too long
                self._skipping = False
                continue
            self._line(line, now)

    def _overflow(self) -> None:
        if not self._skipping:
            self._discard(bytes(self._buf), f"строка длиннее {self.framing.max_length} байт")
            self._skipping = True
        keep = max(len(self.framing.suffix) - 1, 0)
        # Keep what may be the first bytes of a multi-byte suffix that ends the junk.
        tail = bytes(self._buf[-keep:]) if keep else b""
        self._buf = bytearray(tail)

    def _discard(self, data: bytes, reason: str) -> None:
        self._events.append(BytesDiscarded(data[:_HEAD], len(data), reason))

    def _line(self, line: bytes, at: float) -> None:
        if not line:
            return
        framing = self.framing
        if framing.prefix:
            start = line.find(framing.prefix)
            if start < 0:
                self._discard(line, "строка без префикса сканера")
                return
            if start:
                self._discard(line[:start], "байты перед префиксом сканера")
            line = line[start + len(framing.prefix) :]
        aim = parse_aim(line) if framing.aim else None
        if aim is not None:
            line = line[3:]
        if framing.gs_substitute is not None:
            line = line.replace(framing.gs_substitute, GS)
        for byte in line:
            if (byte < 0x20 and byte != 0x1D) or byte == 0x7F:
                self._discard(line, f"управляющий байт 0x{byte:02X} в данных скана")
                return
        if not line:
            self._discard(b"", "пустой скан (только префикс/идентификатор)")
            return
        self._events.append(CodeScanned(line, aim, at))


def encode_scan(data: bytes, framing: LineFraming, aim: str | None = None) -> bytes:
    """What a scanner configured with ``framing`` sends for ``data`` (GS as 0x1D in ``data``).

    ``aim`` is the identifier to send when ``framing.aim`` is on (``]X0`` if not given).
    """
    body = data if framing.gs_substitute is None else data.replace(GS, framing.gs_substitute)
    head = (aim or "]X0").encode("ascii") if framing.aim else b""
    return framing.prefix + head + body + framing.suffix
