"""nexo Sale to POI over TCP: length-prefixed frames.

The nexo "Sale to POI Transport Protocols" (v3.1, §3.3.2 TCP Protocol) delimits messages on a
TCP stream with a 4-byte length in network byte order before each message; the length does
not include itself. Terminals that speak JSON over TCP (e.g. Market Pay's Local API on 7777/7778)
send the same prefix before a ``SaleToPOIRequest`` / ``SaleToPOIResponse`` JSON envelope::

    +----------------+--------------------------------------+
    | length u32 BE  | UTF-8 JSON, ``length`` bytes          |
    +----------------+--------------------------------------+

A length over ``max_frame`` (64 KiB by default; receipts are a few KiB) cannot be resynchronised
from (there is no start marker), so it is fatal: ``FrameTooLarge`` and the link closes. That is
also what stops a peer speaking another protocol from making us buffer forever.
"""

from __future__ import annotations

import struct
from typing import Final

from protocols.nexo.errors import FrameTooLarge, LocalProtocolError

HEADER: Final = struct.Struct(">I")
MAX_FRAME: Final = 64 * 1024


def frame(payload: bytes, max_frame: int = MAX_FRAME) -> bytes:
    if len(payload) > max_frame:
        raise LocalProtocolError(f"message of {len(payload)} bytes exceeds the {max_frame}-byte frame limit")
    return HEADER.pack(len(payload)) + payload


class FrameBuffer:
    """Feed bytes, take complete payloads. Never holds more than one frame plus a header."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._broken = False

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_payload(self) -> bytes | None:
        """One payload, or ``None`` when more bytes are needed. Raises ``FrameTooLarge`` (sticky)."""
        if self._broken:
            raise FrameTooLarge("the link lost its framing earlier; close it")
        if len(self._buf) < HEADER.size:
            return None
        (length,) = HEADER.unpack_from(self._buf)
        if length > self.max_frame:
            self._broken = True
            raise FrameTooLarge(f"length prefix {length} exceeds the {self.max_frame}-byte limit")
        if len(self._buf) < HEADER.size + length:
            return None
        payload = bytes(self._buf[HEADER.size : HEADER.size + length])
        del self._buf[: HEADER.size + length]
        return payload
