"""Massa-K Protocol 100 framing (serial RS-232/USB-CDC and TCP, same bytes).

Byte layout of one frame, both directions::

    +------+------+------+--------+--------+---------------------+--------+--------+
    | 0xF8 | 0x55 | 0xCE | LEN lo | LEN hi | BODY (LEN bytes)    | CRC lo | CRC hi |
    +------+------+------+--------+--------+---------------------+--------+--------+
      header (3)           body length u16 LE  BODY[0] = command code   CRC-16 of BODY, LE

    CRC-16: polynomial 0x1021, initial value 0, over BODY only (header and LEN excluded),
    in the vendor's non-augmented form  crc = T[crc >> 8] ^ (crc << 8) ^ byte  (16 bits),
    where T[i] is the plain MSB-first CRC of the byte i. Vectors (vendor document quoted in
    VladStandard/WeightService, and recomputed):
        F8 55 CE 01 00 23 23 00                          CMD_GET_MASSA
        F8 55 CE 08 00 92 01 00 00 00 00 00 00 B5 EF     CMD_GET_SYS
        F8 55 CE 06 00 55 07 2C 01 00 00 44 1F           CMD_SET_RGNUM 300

Resynchronisation (the idea of pymodbus's RTU framer): the parser scans for the 3-byte
header; bytes before it are reported once as ``Garbage``; a LEN above ``MAX_BODY`` or a CRC
mismatch drops only the first header byte and hunts for the next header inside what was
buffered, so a real frame that follows a corrupted one is still found. The buffer never
holds more than one maximal frame.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from protocols.massak.errors import BadCrc, BadLength, Garbage, RemoteProtocolError

HEADER: Final = b"\xf8\x55\xce"
MAX_BODY: Final = 512
"""Largest body accepted; real answers are under 100 bytes (scale parameters)."""
OVERHEAD: Final = len(HEADER) + 2 + 2


def _table() -> tuple[int, ...]:
    out = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        out.append(crc & 0xFFFF)
    return tuple(out)


_CRC_TABLE: Final = _table()


def crc16(body: bytes) -> int:
    """The Protocol 100 CRC of ``body``."""
    crc = 0
    for byte in body:
        crc = (_CRC_TABLE[crc >> 8] ^ (crc << 8) ^ byte) & 0xFFFF
    return crc


def encode_frame(body: bytes) -> bytes:
    """Header, length, ``body`` and CRC."""
    if not body:
        raise ValueError("a Massa-K frame body holds at least the command byte")
    if len(body) > MAX_BODY:
        raise ValueError(f"Massa-K frame body of {len(body)} bytes exceeds {MAX_BODY}")
    return HEADER + len(body).to_bytes(2, "little") + body + crc16(body).to_bytes(2, "little")


class FrameParser:
    """Bytes in, frame bodies out; errors in stream order, each raised once."""

    def __init__(self, max_body: int = MAX_BODY) -> None:
        self.max_body = max_body
        self._buf = bytearray()
        self._out: deque[bytes | RemoteProtocolError] = deque()
        self._hunting = False  # after a bad frame: its remains are not reported again

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data
        self._scan()

    def next_body(self) -> bytes | None:
        """The next frame body, ``None`` until more bytes arrive; raises ``RemoteProtocolError``
        for dropped bytes (already consumed: call again to continue)."""
        if not self._out:
            return None
        item = self._out.popleft()
        if isinstance(item, RemoteProtocolError):
            raise item
        return item

    def clear(self) -> None:
        self._buf.clear()
        self._out.clear()
        self._hunting = False

    def _garbage(self, error: Garbage) -> None:
        if not self._hunting:
            self._out.append(error)

    def _scan(self) -> None:
        buf = self._buf
        while buf:
            start = buf.find(HEADER)
            if start < 0:
                # Keep a tail that may be the beginning of a header split across reads.
                keep = next((k for k in (2, 1) if buf.endswith(HEADER[:k])), 0)
                junk = len(buf) - keep
                if junk:
                    self._garbage(Garbage(f"{junk} байт вне кадра Massa-K", bytes(buf[:junk][:32])))
                    del buf[:junk]
                return
            if start:
                self._garbage(Garbage(f"{start} байт перед заголовком кадра Massa-K", bytes(buf[:start][:32])))
                del buf[:start]
            if len(buf) < 5:
                return
            length = int.from_bytes(buf[3:5], "little")
            if length == 0 or length > self.max_body:
                self._out.append(BadLength(f"Недопустимая длина тела кадра Massa-K: {length}", bytes(buf[:5])))
                self._hunting = True
                del buf[:1]
                continue
            end = 5 + length + 2
            if len(buf) < end:
                return
            body = bytes(buf[5 : 5 + length])
            got = int.from_bytes(buf[5 + length : end], "little")
            if got != crc16(body):
                self._out.append(
                    BadCrc(f"CRC кадра Massa-K {got:04X}, ожидалось {crc16(body):04X}", bytes(buf[:end][:32]))
                )
                self._hunting = True
                del buf[:1]
                continue
            self._hunting = False
            self._out.append(body)
            del buf[:end]
