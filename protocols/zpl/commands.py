"""A ZPL II tokenizer for the printer side: bytes in, commands and label formats out.

Syntax (ZPL II Programming Guide, "ZPL II Basics"): a command is a prefix (``^`` format
command, ``~`` control command), a two-character name, then parameters up to the next
prefix. ``^A`` is the one-letter exception: ``^A0N,30,30`` is command ``A`` with the font
name as its first parameter character (``^A@`` is a command of its own). Field data
(``^FD…``) also runs to the next prefix, which is why templates hex-escape ``^``, ``~`` and
``_`` under ``^FH``. A format runs from ``^XA`` to ``^XZ``; control commands (``~HS``,
``~HI``, ``~JA``) act at once, even in the middle of a format, as on a real printer. CR and
LF are ignored everywhere (printers ignore them too). Changing the prefixes (``^CC``/``~CC``)
is not supported: such commands are reported like any other and otherwise ignored.

``ZplStreamParser`` is sans-I/O with a bounded buffer: a format larger than ``MAX_FORMAT``
bytes is dropped with a ``RemoteProtocolError`` (after being consumed). Bytes outside a
format that are not a control command are skipped and counted in ``discarded``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from protocols.zpl.errors import RemoteProtocolError

PREFIXES: Final = b"^~"
MAX_FORMAT: Final = 256 * 1024
# Commands that take no parameters: complete as soon as their name has arrived.
NO_PARAMS: Final = frozenset({"XA", "XZ", "FS", "HS", "HI", "JA", "HM", "HH"})


@dataclass(frozen=True)
class Command:
    """One ZPL command: ``prefix`` + ``name`` + raw ``params`` (bytes, CR/LF removed)."""

    prefix: str
    name: str
    params: bytes = b""

    @property
    def code(self) -> str:
        """``^FO``, ``~HS``, ``^A``… as written in the manual."""
        return self.prefix + self.name

    def args(self) -> list[str]:
        """Parameters split on commas, decoded as Latin-1 (parameters are ASCII)."""
        return self.params.decode("latin-1").split(",") if self.params else []

    def arg(self, index: int, default: str = "") -> str:
        values = self.args()
        return values[index].strip() if index < len(values) and values[index].strip() else default

    def int_arg(self, index: int, default: int) -> int:
        value = self.arg(index)
        try:
            return int(value) if value else default
        except ValueError:
            return default

    def encode(self) -> bytes:
        return self.prefix.encode() + self.name.encode() + self.params


@dataclass(frozen=True)
class LabelFormat:
    """The commands between ``^XA`` and ``^XZ`` (both excluded)."""

    commands: tuple[Command, ...]


@dataclass(frozen=True)
class ControlCommand:
    """A ``~`` command, to act on at once (``~HS``, ``~HI``, ``~JA``, …)."""

    command: Command


@dataclass(frozen=True)
class StrayCommand:
    """A ``^`` command outside ``^XA…^XZ``: printers ignore it; simulators record it."""

    command: Command


class _Need(Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _Need.NEED_DATA

Event = LabelFormat | ControlCommand | StrayCommand


def _split_command(buf: bytes | bytearray, final: bool) -> tuple[Command, int] | None:
    """Parse the command starting at ``buf[0]`` (a prefix); ``None`` if it is incomplete."""
    if len(buf) < 3:
        if final and len(buf) == 2:
            return Command(chr(buf[0]), chr(buf[1]).upper()), 2
        return None
    name = bytes(buf[1:3]).decode("latin-1").upper()
    start = 3
    if name[0] == "A" and name != "A@" and chr(buf[0]) == "^":
        name, start = "A", 2
    if name in NO_PARAMS:
        return Command(chr(buf[0]), name), start
    end = start
    while end < len(buf) and buf[end] not in PREFIXES:
        end += 1
    if end == len(buf) and not final:
        return None
    params = bytes(buf[start:end]).replace(b"\r", b"").replace(b"\n", b"")
    return Command(chr(buf[0]), name, params), end


def tokenize(data: bytes) -> list[Command]:
    """Every command in a complete ZPL text, in order (bytes before the first prefix skipped)."""
    out: list[Command] = []
    buf = data
    pos = 0
    while pos < len(buf):
        if buf[pos] not in PREFIXES:
            pos += 1
            continue
        got = _split_command(buf[pos:], final=True)
        if got is None:
            break
        command, used = got
        out.append(command)
        pos += used
    return out


class ZplStreamParser:
    """Printer side: bytes from the host in, ``LabelFormat``/``ControlCommand`` events out."""

    def __init__(self, max_format: int = MAX_FORMAT) -> None:
        self._buf = bytearray()
        self._max = max_format
        self._format: list[Command] | None = None
        self._format_size = 0
        self.discarded = 0

    @property
    def in_format(self) -> bool:
        """True between ``^XA`` and ``^XZ`` (the printer's "partial format" flag)."""
        return self._format is not None

    def receive_data(self, data: bytes) -> None:
        self._buf += data

    def next_event(self) -> Event | _Need:
        while True:
            skip = 0
            while skip < len(self._buf) and self._buf[skip] not in PREFIXES:
                skip += 1
            if skip:
                if self._format is None:
                    self.discarded += skip
                del self._buf[:skip]
            if not self._buf:
                return NEED_DATA
            got = _split_command(self._buf, final=False)
            if got is None:
                if len(self._buf) + self._format_size > self._max:
                    return self._overflow()
                return NEED_DATA
            command, used = got
            del self._buf[:used]
            if command.prefix == "~":
                return ControlCommand(command)
            if command.name == "XA":
                self._format, self._format_size = [], 0
                continue
            if self._format is None:
                if command.name == "XZ":
                    continue
                return StrayCommand(command)
            if command.name == "XZ":
                done, self._format = self._format, None
                return LabelFormat(tuple(done))
            self._format.append(command)
            self._format_size += used
            if self._format_size > self._max:
                return self._overflow()

    def _overflow(self) -> _Need:
        dropped = bytes(self._buf)
        self._buf.clear()
        self._format, self._format_size = None, 0
        raise RemoteProtocolError(f"ZPL format longer than {self._max} bytes: dropped", dropped[:64])


def unescape_field_hex(data: bytes, indicator: bytes = b"_") -> bytes:
    """Apply ``^FH`` hex escapes (``_5E`` → ``^``); an indicator not followed by two hex
    digits is kept as is, as printers do."""
    out = bytearray()
    i = 0
    while i < len(data):
        if data[i : i + 1] == indicator and _is_hex(data[i + 1 : i + 3]):
            out.append(int(data[i + 1 : i + 3], 16))
            i += 3
            continue
        out.append(data[i])
        i += 1
    return bytes(out)


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)


def decode_field_text(data: bytes, charset: int) -> str:
    """Field bytes to text under ``^CI`` ``charset`` (28 = UTF-8; others taken as Latin-1)."""
    if charset in (28, 29, 30):
        return data.decode("utf-8", errors="replace")
    return data.decode("latin-1")


def decode_datamatrix_escapes(data: bytes, escape: bytes = b"_") -> tuple[bool, bytes]:
    """Quality-200 ``^BX`` field data to the symbol's content.

    Returns ``(gs1, content)``: ``gs1`` is True when the data starts with FNC1 (``_1``);
    later FNC1s become GS (0x1D), as a scanner transmits them. ``_dNNN`` is the byte NNN;
    a doubled escape character is the character itself; ``_X`` (a letter) is control
    character X-64.
    """
    out = bytearray()
    gs1 = False
    i = 0
    while i < len(data):
        c = data[i : i + 1]
        if c != escape or i + 1 >= len(data):
            out += c
            i += 1
            continue
        nxt = data[i + 1 : i + 2]
        if nxt == b"1":
            if i == 0:
                gs1 = True
            else:
                out.append(0x1D)
            i += 2
        elif nxt == b"d" and data[i + 2 : i + 5].isdigit() and len(data[i + 2 : i + 5]) == 3:
            out.append(int(data[i + 2 : i + 5]) & 0xFF)
            i += 5
        elif nxt == escape:
            out += escape
            i += 2
        elif b"@" <= nxt <= b"_":
            out.append(nxt[0] - 0x40)
            i += 2
        else:
            out += c
            i += 1
    return gs1, bytes(out)
