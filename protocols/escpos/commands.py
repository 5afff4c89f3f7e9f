"""An ESC/POS command tokenizer for the printer side: host bytes in, text and commands out.

Covers what python-escpos sends for our documents and the common rest (lengths per the
Epson ESC/POS command reference)::

    ESC @            init              ESC t n         code page        ESC ! n    print mode
    ESC E n          bold              ESC - n         underline        ESC a n    justification
    ESC M n          font              ESC G n         double strike    ESC { n    upside down
    ESC d n          feed n lines      ESC J n         feed n dots      ESC 2 / ESC 3 n  line spacing
    ESC p m t1 t2    drawer kick       ESC R n         intl. charset    ESC SP n   char spacing
    ESC $ nL nH      absolute pos.     ESC V n         rotate           ESC c 5 n  panel buttons
    GS ! n           char size         GS B n          reverse          GS b n     smoothing
    GS h/w/H/f n     barcode height, module width, HRI position, HRI font
    GS L/W nL nH     margin / width    GS V m [n]      cut (m 65/66 take n)
    GS k m d… NUL    barcode, function A (m 0..6)
    GS k m n d1..dn  barcode, function B (m 65..79)
    GS ( k pL pH …   2D codes (QR: cn 49; fn 65 model, 67 size, 69 ECC, 80 store, 81 print)
    GS ( X pL pH …   any other GS ( function: pL+pH*256 bytes follow
    GS 8 L p1..p4 …  long graphics: p1+p2<<8+p3<<16+p4<<24 bytes follow
    GS v 0 m xL xH yL yH d…  raster image: (xL+xH*256)*(yL+yH*256) bytes
    DLE EOT n        real-time status (answered at once)    DLE ENQ n   real-time recovery
    FS . / FS &      Kanji off/on (Chinese firmware)
    LF CR HT         text controls; every other byte is text in the current code page

An unknown ``ESC x``/``GS x`` is reported with no parameters (printers differ; recorded by
the simulator). Declared payloads above ``MAX_PAYLOAD`` raise ``RemoteProtocolError`` after
the header is consumed. ``EscPosParser`` is sans-I/O; text is handed out as it arrives, so what stays buffered
between events is at most one unfinished command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocols.escpos.errors import RemoteProtocolError
from protocols.escpos.status import NEED_DATA, _Need

ESC: Final = 0x1B
GS: Final = 0x1D
DLE: Final = 0x10
EOT: Final = 0x04
FS: Final = 0x1C
LF: Final = 0x0A
CR: Final = 0x0D
HT: Final = 0x09
MAX_PAYLOAD: Final = 4 * 1024 * 1024

# Number of fixed parameter bytes after ESC x / GS x.
_ESC_ARGS: Final = {
    b"@": 0,
    b"t": 1,
    b"!": 1,
    b"E": 1,
    b"-": 1,
    b"a": 1,
    b"M": 1,
    b"G": 1,
    b"{": 1,
    b"d": 1,
    b"J": 1,
    b"2": 0,
    b"3": 1,
    b"p": 3,
    b"R": 1,
    b" ": 1,
    b"$": 2,
    b"V": 1,
    b"c": 2,
    b"e": 1,
    b"U": 1,
    b"r": 1,
    b"=": 1,
    b"i": 0,
    b"m": 0,
    b"%": 1,
    b"S": 0,
    b"L": 0,
    b"T": 1,
    b"*": 3,
}
_GS_ARGS: Final = {
    b"!": 1,
    b"B": 1,
    b"b": 1,
    b"h": 1,
    b"w": 1,
    b"H": 1,
    b"f": 1,
    b"L": 2,
    b"W": 2,
    b"a": 1,
    b"r": 1,
    b"I": 1,
    b"P": 2,
    b"^": 3,
    b"$": 2,
    b"\\": 2,
}
_NAMES: Final = {ESC: "ESC", GS: "GS", DLE: "DLE", FS: "FS"}


@dataclass(frozen=True)
class Text:
    """Printable bytes in the current code page (decoded by whoever knows the page)."""

    data: bytes


@dataclass(frozen=True)
class Control:
    """A command: ``name`` like ``"ESC t"``, ``"GS V"``, ``"LF"``; ``args`` its parameter bytes;
    ``payload`` the data that follows (barcode digits, QR function body, image)."""

    name: str
    args: bytes = b""
    payload: bytes = b""
    known: bool = True

    def arg(self, index: int, default: int = 0) -> int:
        return self.args[index] if index < len(self.args) else default


@dataclass(frozen=True)
class RealTimeRequest:
    """``DLE EOT n``: the printer answers one status byte at once, even while offline."""

    n: int


Event = Text | Control | RealTimeRequest


def _name(prefix: int, code: int) -> str:
    ch = chr(code) if 0x20 <= code < 0x7F else f"0x{code:02X}"
    return f"{_NAMES[prefix]} {ch}"


class EscPosParser:
    """Printer side: feed host bytes, take ``Text``/``Control``/``RealTimeRequest`` events."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self._buf = bytearray()
        self._max = max_payload

    def receive_data(self, data: bytes) -> None:
        self._buf += data

    def next_event(self) -> Event | _Need:
        buf = self._buf
        if not buf:
            return NEED_DATA
        first = buf[0]
        if first not in _NAMES and first not in (LF, CR, HT):
            end = 0
            while end < len(buf) and buf[end] not in _NAMES and buf[end] not in (LF, CR, HT):
                end += 1
            text = bytes(buf[:end])
            del buf[:end]
            return Text(text)
        if first in (LF, CR, HT):
            del buf[:1]
            return Control({LF: "LF", CR: "CR", HT: "HT"}[first])
        if len(buf) < 2:
            return NEED_DATA
        got = self._command(bytes(buf[:2]))
        if got is None:
            return NEED_DATA
        return got

    def _take(self, n: int) -> bytes | None:
        if len(self._buf) < n:
            return None
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _fixed(self, name: str, nargs: int, known: bool = True) -> Control | None:
        raw = self._take(2 + nargs)
        return None if raw is None else Control(name, raw[2:], known=known)

    def _sized(self, name: str, header: int, size: int) -> Control | None:
        if size > self._max:
            del self._buf[:header]
            raise RemoteProtocolError(f"{name}: declared {size} bytes, more than {self._max}")
        raw = self._take(header + size)
        return None if raw is None else Control(name, raw[2:header], raw[header:])

    def _command(self, head: bytes) -> Event | None:
        prefix, code = head[0], head[1]
        name = _name(prefix, code)
        buf = self._buf
        if prefix == DLE:
            if code in (EOT, 0x05):  # DLE EOT n / DLE ENQ n
                raw = self._take(3)
                if raw is None:
                    return None
                return RealTimeRequest(raw[2]) if code == EOT else Control(name, raw[2:])
            if code == 0x14:  # DLE DC4 fn a b (Epson real-time: drawer pulse, buffer clear…)
                return self._fixed(name, 3)
            return self._fixed(name, 0, known=False)
        if prefix == FS:
            return self._fixed(name, 0, known=code in (ord("."), ord("&")))
        key = bytes([code])
        if prefix == ESC:
            if key in _ESC_ARGS:
                if key == b"*":  # ESC * m nL nH d…: bit image, nL+nH*256 columns (×3 for 24-dot m)
                    if len(buf) < 5:
                        return None
                    columns = buf[3] + buf[4] * 256
                    return self._sized(name, 5, columns * (3 if buf[2] in (32, 33) else 1))
                return self._fixed(name, _ESC_ARGS[key])
            return self._fixed(name, 0, known=False)
        # GS
        if key == b"V":
            if len(buf) < 3:
                return None
            return self._fixed(name, 2 if buf[2] in (65, 66, 97, 98, 103, 104) else 1)
        if key == b"k":
            if len(buf) < 3:
                return None
            m = buf[2]
            if m <= 6:
                end = buf.find(b"\x00", 3)
                if end < 0:
                    if len(buf) > 3 + 255:
                        del buf[:3]
                        raise RemoteProtocolError("GS k (function A): no NUL within 255 bytes")
                    return None
                raw = self._take(end + 1)
                assert raw is not None
                return Control(name, raw[2:3], raw[3:-1])
            if len(buf) < 4:
                return None
            return self._sized(name, 4, buf[3])
        if key == b"(":
            if len(buf) < 5:
                return None
            return self._sized(
                f"GS ( {chr(buf[2]) if 0x20 <= buf[2] < 0x7F else buf[2]}", 5, buf[3] + buf[4] * 256
            )
        if key == b"8":
            if len(buf) < 7:
                return None
            size = buf[3] | buf[4] << 8 | buf[5] << 16 | buf[6] << 24
            return self._sized(f"GS 8 {chr(buf[2]) if 0x20 <= buf[2] < 0x7F else buf[2]}", 7, size)
        if key == b"v":
            if len(buf) < 8:
                return None
            size = (buf[4] + buf[5] * 256) * (buf[6] + buf[7] * 256)
            return self._sized("GS v", 8, size)
        if key in _GS_ARGS:
            return self._fixed(name, _GS_ARGS[key])
        return self._fixed(name, 0, known=False)
