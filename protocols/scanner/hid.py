"""USB HID scanner reports: HID POS (usage page 0x8C) and keyboard wedge (boot keyboard).

**HID POS scanned-data report** (HID Point of Sale Usage Tables, page 0x8C, usage 0x12
"Scanned Data Report"), in the 64-byte layout Honeywell, Zebra and Datalogic send it on the
interrupt IN endpoint (report ID included, as pyusb and hidraw read it)::

    0     1     2  3  4        5 ............ 60   61    62   63
    0x02  len   sym id 1..3    decoded data (56)   vendor ids  flags
    │     │     │              │                              └ bit 0: "decode data continued",
    │     │     │              │                                another report follows
    │     │     │              └ ``len`` bytes are data, the rest is padding
    │     │     └ AIM identifier (``]E0``…) when the scanner sends one, else zeros
    │     └ data bytes in this report (0..56)
    └ report ID of the scanned-data report; other reports (status, trigger) are ignored

Long codes (a Честный знак code with AI 92 is ~85 bytes) span several reports; the decoder
joins them up to ``max_length``.

**Boot keyboard report** (HID 1.11 appendix B): ``modifiers, reserved, key1..key6`` with
keyboard page usages; a keyboard-wedge scanner "types" the code. Decoded with a US layout
(what a scanner must be set to: a Russian layout turns letters into Cyrillic). A key is typed
when its usage appears in a report and was not in the previous one, so a release report
(all zeros) between two equal characters is what makes "11" two keys. Enter types CR (the
usual suffix), Tab types TAB, Ctrl+] types GS (0x1D), other Ctrl+letter combinations type
their control byte, and Alt + keypad digits (Windows Alt codes, e.g. Alt+0,2,9 for GS) type
the byte when Alt is released. Bytes out go to a ``LineDecoder`` like a serial scanner's.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from protocols.scanner.errors import MalformedReport
from protocols.scanner.framing import GS, NEED_DATA, BytesDiscarded, CodeScanned, ScannerEvent
from protocols.scanner.symbology import parse_aim

POS_REPORT_ID: Final = 0x02
POS_REPORT_SIZE: Final = 64
POS_DATA_OFFSET: Final = 5
POS_DATA_MAX: Final = 56
POS_FLAGS_OFFSET: Final = 63
POS_CONTINUED: Final = 0x01


class HidPosDecoder:
    """HID POS scanned-data reports in, ``CodeScanned`` / ``BytesDiscarded`` events out."""

    def __init__(self, *, max_length: int = 4096) -> None:
        self.max_length = max_length
        self._buf = bytearray()
        self._aim_bytes = b""
        self._skipping = False
        self._events: deque[ScannerEvent] = deque()

    def receive_report(self, report: bytes, now: float) -> None:
        """Add one input report; raises ``MalformedReport`` for a broken scanned-data report."""
        if not report or report[0] != POS_REPORT_ID:
            return
        if len(report) != POS_REPORT_SIZE:
            raise MalformedReport(f"Отчёт HID POS длиной {len(report)} байт, ожидается {POS_REPORT_SIZE}")
        size = report[1]
        if size > POS_DATA_MAX:
            raise MalformedReport(f"В отчёте HID POS длина данных {size} > {POS_DATA_MAX}")
        if not self._buf and not self._skipping:
            self._aim_bytes = bytes(report[2:5])
        self._buf += report[POS_DATA_OFFSET : POS_DATA_OFFSET + size]
        if len(self._buf) > self.max_length:
            if not self._skipping:
                self._events.append(
                    BytesDiscarded(
                        bytes(self._buf[:32]), len(self._buf), f"скан длиннее {self.max_length} байт"
                    )
                )
                self._skipping = True
            self._buf.clear()
        if report[POS_FLAGS_OFFSET] & POS_CONTINUED:
            return
        data, skipping = bytes(self._buf).rstrip(b"\r\n"), self._skipping
        self._buf.clear()
        self._skipping = False
        if skipping:
            return
        if not data:
            self._events.append(BytesDiscarded(b"", 0, "пустой скан в отчёте HID POS"))
            return
        self._events.append(CodeScanned(data, parse_aim(self._aim_bytes), now))

    def next_event(self) -> ScannerEvent | str:
        return self._events.popleft() if self._events else NEED_DATA


def encode_pos_reports(data: bytes, aim: str | None = None) -> list[bytes]:
    """The scanned-data reports a HID POS scanner sends for ``data`` (the device side)."""
    aim_bytes = aim.encode("ascii") if aim else b"\x00\x00\x00"
    if len(aim_bytes) != 3:
        raise ValueError(f"AIM identifier must be 3 characters: {aim!r}")
    chunks = [data[i : i + POS_DATA_MAX] for i in range(0, len(data), POS_DATA_MAX)] or [b""]
    reports = []
    for n, chunk in enumerate(chunks):
        report = bytearray(POS_REPORT_SIZE)
        report[0] = POS_REPORT_ID
        report[1] = len(chunk)
        report[2:5] = aim_bytes
        report[POS_DATA_OFFSET : POS_DATA_OFFSET + len(chunk)] = chunk
        report[POS_FLAGS_OFFSET] = POS_CONTINUED if n < len(chunks) - 1 else 0
        reports.append(bytes(report))
    return reports


# --- keyboard wedge -------------------------------------------------------------------------

KEYBOARD_REPORT_SIZE: Final = 8
LEFT_CTRL, LEFT_SHIFT, LEFT_ALT = 0x01, 0x02, 0x04
RIGHT_CTRL, RIGHT_SHIFT, RIGHT_ALT = 0x10, 0x20, 0x40
_CTRL = LEFT_CTRL | RIGHT_CTRL
_SHIFT = LEFT_SHIFT | RIGHT_SHIFT
_ALT = LEFT_ALT | RIGHT_ALT
_ROLLOVER = 0x01
KEY_ENTER, KEY_TAB, KEY_KP_ENTER = 0x28, 0x2B, 0x58

# usage → (unshifted, shifted), US layout
_US: dict[int, tuple[str, str]] = {
    0x04 + i: (c, c.upper()) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")
}
_US.update({0x1E + i: pair for i, pair in enumerate(zip("1234567890", "!@#$%^&*()", strict=True))})
_US.update(
    {
        KEY_ENTER: ("\r", "\r"),
        KEY_TAB: ("\t", "\t"),
        0x2C: (" ", " "),
        0x2D: ("-", "_"),
        0x2E: ("=", "+"),
        0x2F: ("[", "{"),
        0x30: ("]", "}"),
        0x31: ("\\", "|"),
        0x33: (";", ":"),
        0x34: ("'", '"'),
        0x35: ("`", "~"),
        0x36: (",", "<"),
        0x37: (".", ">"),
        0x38: ("/", "?"),
    }
)
_KEYPAD: dict[int, str] = {
    0x54: "/",
    0x55: "*",
    0x56: "-",
    0x57: "+",
    KEY_KP_ENTER: "\r",
    0x62: "0",
    0x63: ".",
}
_KEYPAD.update({0x59 + i: str(i + 1) for i in range(9)})
# Ctrl + key → control byte (ASCII "caret" notation: ^] is GS)
_CTRL_KEYS: dict[int, int] = {0x04 + i: i + 1 for i in range(26)}
_CTRL_KEYS.update({0x2F: 0x1B, 0x31: 0x1C, 0x30: 0x1D, 0x23: 0x1E, 0x2D: 0x1F})

_ENCODE: dict[str, tuple[int, int]] = {}
for _usage, (_plain, _shifted) in _US.items():
    _ENCODE.setdefault(_plain, (0, _usage))
    _ENCODE.setdefault(_shifted, (LEFT_SHIFT, _usage))
_ENCODE[GS.decode()] = (LEFT_CTRL, 0x30)


class KeyboardDecoder:
    """Boot keyboard reports in, typed bytes out (feed them to a ``LineDecoder``)."""

    def __init__(self) -> None:
        self._down: frozenset[int] = frozenset()
        self._alt_digits = ""

    def receive_report(self, report: bytes) -> bytes:
        """The bytes typed by this report; ``MalformedReport`` if it is not 8 (or 9) bytes."""
        if len(report) == KEYBOARD_REPORT_SIZE + 1:
            report = report[1:]  # a report ID in front (composite devices)
        if len(report) != KEYBOARD_REPORT_SIZE:
            raise MalformedReport(
                f"Отчёт клавиатуры длиной {len(report)} байт, ожидается {KEYBOARD_REPORT_SIZE}"
            )
        modifiers = report[0]
        keys = [k for k in report[2:] if k]
        if _ROLLOVER in keys:  # too many keys at once: the state is unknown, keep the old one
            return b""
        out = bytearray()
        pressed = [k for k in keys if k not in self._down]
        self._down = frozenset(keys)
        if modifiers & _ALT:
            for key in pressed:
                digit = _KEYPAD.get(key, "")
                if digit.isdigit() and len(self._alt_digits) < 4:
                    self._alt_digits += digit
            return b""
        if self._alt_digits:  # Alt released: the Alt code is typed now
            out.append(int(self._alt_digits) & 0xFF)
            self._alt_digits = ""
        for key in pressed:
            if modifiers & _CTRL:
                if key in _CTRL_KEYS:
                    out.append(_CTRL_KEYS[key])
                continue
            if key in _KEYPAD:
                out += _KEYPAD[key].encode()
                continue
            pair = _US.get(key)
            if pair is not None:
                out += pair[1 if modifiers & _SHIFT else 0].encode()
        return bytes(out)


def encode_keyboard(text: bytes) -> list[bytes]:
    """The press/release reports a keyboard-wedge scanner sends to type ``text`` (US layout)."""
    reports: list[bytes] = []
    release = bytes(KEYBOARD_REPORT_SIZE)
    for byte in text:
        key = _ENCODE.get(chr(byte))
        if key is None:
            raise ValueError(f"Byte 0x{byte:02X} cannot be typed on a US keyboard")
        modifiers, usage = key
        reports.append(bytes([modifiers, 0, usage, 0, 0, 0, 0, 0]))
        reports.append(release)
    return reports
