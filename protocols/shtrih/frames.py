"""Shtrih-M link framing: ``STX LEN BODY LRC`` plus one-byte control codes.

Byte layout (Shtrih-M protocol v1; the same bytes over RS-232, USB-CDC and TCP 7778)::

    control bytes:   ENQ 05   "are you there / have you an answer?"
                     ACK 06   "frame received" / "I hold an unread answer" (after ENQ)
                     NAK 15   "bad frame, send again" / "idle, send your command" (after ENQ)

    frame:   STX  LEN  BODY[0] ... BODY[LEN-1]  LRC
             02   n    CMD (1 byte, or FF xx)   XOR of LEN and every BODY byte
                       DATA...

    host → device body:  CMD  PASSWORD(4, LE)  params...
    device → host body:  CMD  ERR(1)  [operator(1)]  data...

    e.g. short status, password 30:  02 05 10 1E 00 00 00 0B

This module knows nothing of commands: Shtrih M5 scales use the same STX/LEN/XOR frames with
their own command set, so ``FrameDecoder`` and ``encode_frame`` are shared with them.

Hunting after garbage (as pymodbus's RTU framer does): bytes that are neither STX nor a
control code are dropped and counted; a frame whose LRC does not match is consumed whole and
reported once as ``BadChecksum`` (the link layer answers NAK and the peer resends); a frame
cut short stays buffered until more bytes arrive or the link layer calls ``reset()`` on a
timeout.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from protocols.shtrih.errors import BadChecksum

STX: Final = 0x02
MAX_BODY: Final = 255


class Control(IntEnum):
    """The one-byte link control codes."""

    ENQ = 0x05
    ACK = 0x06
    NAK = 0x15


@dataclass(frozen=True, slots=True)
class Frame:
    """One checked frame; ``body`` is CMD + DATA (LEN and LRC stripped)."""

    body: bytes

    def __post_init__(self) -> None:
        if not 1 <= len(self.body) <= MAX_BODY:
            raise ValueError(f"frame body must be 1..{MAX_BODY} bytes, got {len(self.body)}")


def lrc(data: bytes) -> int:
    """XOR of every byte (the Shtrih LRC is taken over LEN and BODY)."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def encode_frame(body: bytes) -> bytes:
    """``STX LEN BODY LRC`` for a body of 1..255 bytes."""
    Frame(body)  # validates the length
    head = bytes([len(body)]) + body
    return bytes([STX]) + head + bytes([lrc(head)])


class FrameDecoder:
    """Split a byte stream into ``Frame`` and ``Control`` items, in stream order."""

    def __init__(self, *, controls: frozenset[int] = frozenset(Control)) -> None:
        self._buf = bytearray()
        self._controls = controls
        self._items: deque[Frame | Control | BadChecksum] = deque()
        self.discarded = 0
        """Garbage bytes dropped so far (diagnostics)."""

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame kept."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget a partial frame (the link layer's inter-byte timeout expired)."""
        self.discarded += len(self._buf)
        self._buf.clear()

    def feed(self, data: bytes) -> None:
        self._buf += data
        buf = self._buf
        while buf:
            first = buf[0]
            if first != STX:
                if first in self._controls:
                    self._items.append(Control(first))
                else:
                    self.discarded += 1
                del buf[0]
                continue
            if len(buf) < 2:
                return
            length = buf[1]
            if length == 0:  # no command: not a frame start, hunt on
                self.discarded += 1
                del buf[0]
                continue
            end = 2 + length + 1
            if len(buf) < end:
                return
            head = bytes(buf[1 : 2 + length])
            got = buf[end - 1]
            del buf[:end]
            if lrc(head) != got:
                self._items.append(
                    BadChecksum(f"контрольная сумма кадра не сходится: {lrc(head):02X} ≠ {got:02X}", head[1:])
                )
            else:
                self._items.append(Frame(head[1:]))

    def next_item(self) -> Frame | Control | None:
        """The next frame or control byte; ``None`` until more bytes arrive.

        Raises ``BadChecksum`` (once per bad frame, in stream order); the next call goes on
        with what followed it.
        """
        if not self._items:
            return None
        item = self._items.popleft()
        if isinstance(item, BadChecksum):
            raise item
        return item
