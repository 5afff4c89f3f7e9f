"""MT-SICS line framing: printable ASCII lines terminated by CR LF, in both directions.

Byte layout of one line (the manual's "command" and "response" formats)::

    host → device:   ID [SP param]* CR LF            e.g.  53 0D 0A            "S"
    device → host:   ID SP status [SP param]* CR LF  e.g.  "S S      1.234 kg" 0D 0A
    whole-line error: "ES" | "ET" | "EL" CR LF

    ID      1..5 chars, upper-case letters and digits, or "@"
    status  one char: A B S D I L + -
    param   a number right-aligned in a 10-char field, a unit, or a "quoted string"

Why a bounded buffer with an explicit "skipping" state: a device on the wrong baud rate
streams bytes that never contain CR LF. The framer keeps at most ``max_line`` bytes of an
unterminated line; past that it reports one ``LineTooLong`` and drops everything up to the next
CR LF, which is where the next real line starts (the same hunt pymodbus's RTU framer does for
the next frame start).
"""

from __future__ import annotations

from collections import deque
from typing import Final

from protocols.mtsics.errors import LineTooLong, MalformedLine

CRLF: Final = b"\r\n"
MAX_LINE: Final = 256
"""Longest line we accept; real MT-SICS lines are under 100 bytes (I2 with a long type name)."""


class _Overlong:
    """Marks, in order among complete lines, where an overlong line was dropped."""

    __slots__ = ("head",)

    def __init__(self, head: bytes) -> None:
        self.head = head


class LineBuffer:
    """Split a byte stream into lines; memory stays under ``max_line`` per unterminated line."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        if max_line < 2:
            raise ValueError("max_line must be >= 2")
        self.max_line = max_line
        self._tail = bytearray()
        self._items: deque[bytes | _Overlong] = deque()
        self._skipping = False

    @property
    def buffered(self) -> int:
        """Bytes of the unterminated tail kept (for tests and diagnostics)."""
        return len(self._tail)

    def feed(self, data: bytes) -> None:
        self._tail += data
        while (end := self._tail.find(CRLF)) >= 0:
            line = bytes(self._tail[:end])
            del self._tail[: end + 2]
            if self._skipping:  # the end of a line already reported as too long
                self._skipping = False
            elif len(line) > self.max_line:
                self._items.append(_Overlong(line[:32]))
            else:
                self._items.append(line)
        if len(self._tail) > self.max_line:
            if not self._skipping:
                self._items.append(_Overlong(bytes(self._tail[:32])))
                self._skipping = True
            # Keep a trailing CR: it may be the first half of the CR LF that ends the junk.
            self._tail = bytearray(b"\r") if self._tail.endswith(b"\r") else bytearray()

    def next_line(self) -> bytes | None:
        """The next complete line without CR LF, or ``None`` until more bytes arrive.

        Raises ``LineTooLong`` (once per overlong line, in stream order); the next call
        continues with the line after it.
        """
        if not self._items:
            return None
        item = self._items.popleft()
        if isinstance(item, _Overlong):
            raise LineTooLong(f"MT-SICS line longer than {self.max_line} bytes without CR LF", item.head)
        return item

    def clear(self) -> None:
        self._tail.clear()
        self._items.clear()
        self._skipping = False


def decode_line(line: bytes) -> str:
    """Printable ASCII or ``MalformedLine``: MT-SICS never sends control or 8-bit bytes."""
    if any(b < 0x20 or b > 0x7E for b in line):
        raise MalformedLine(f"non-printable byte in MT-SICS line {line[:40]!r}", line)
    return line.decode("ascii")


def encode_line(text: str) -> bytes:
    """One line with its CR LF; ``ValueError`` for text that cannot travel in a line."""
    if any(not (" " <= ch <= "~") for ch in text):
        raise ValueError(f"MT-SICS lines are printable ASCII: {text!r}")
    return text.encode("ascii") + CRLF
