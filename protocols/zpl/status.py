"""Printer answers to ``~HS`` (host status) and ``~HI`` (host identification), both ways.

Every answer line is a frame ``STX text ETX`` followed by ``CR LF`` (ZPL II Programming
Guide, ~HS "Host Status Return"; ~HI "Host Identification")::

    ~HS →  02 "aaa,b,c,dddd,eee,f,g,h,iii,j,k,l" 03 0D 0A      line 1: 12 fields
           02 "mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www" 03 0D 0A      line 2: 11 fields
           02 "xxxx,y" 03 0D 0A                                line 3: 2 fields
    ~HI →  02 "model,firmware,dpmm,memory[,options]" 03 0D 0A

Line 1: interface settings, paper out, pause, label length (dots), formats in the receive
buffer, buffer full, comm diagnostics mode, partial format, unused 000, corrupt RAM, under
temperature, over temperature. Line 2: function settings, unused, head up (= open), ribbon
out, thermal transfer mode, print mode (0 rewind, 1 peel-off, 2 tear-off, 3 cutter, ...),
print width mode, label waiting (peel-off), labels remaining in batch (8 digits), format
while printing, graphics stored. Line 3: password, static RAM installed.

What a real Zebra tells and what not: "labels remaining in batch" is the count of labels of
the ``^PQ`` batch being printed still to print; "formats in buffer" counts received formats
not yet started. There is no job id and no "last job done" counter: a host can only confirm
its own job when it was the only one queued (see ``drivers.label``).

``AnswerParser`` is sans-I/O: feed it bytes, take ``HostStatus``/``HostIdentification``
events. Noise outside frames is skipped (counted in ``discarded``); a frame longer than
``MAX_FRAME`` or of the wrong shape raises ``RemoteProtocolError`` after it was consumed, so
the caller may call ``next_event()`` again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from protocols.zpl.errors import LocalProtocolError, RemoteProtocolError

STX: Final = 0x02
ETX: Final = 0x03
MAX_FRAME: Final = 256

HOST_STATUS: Final = b"~HS"
HOST_IDENTIFICATION: Final = b"~HI"
CANCEL_ALL: Final = b"~JA"


class _Need(Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _Need.NEED_DATA


def _flag(value: str, name: str) -> bool:
    if value not in ("0", "1"):
        raise RemoteProtocolError(f"~HS: field {name} must be 0 or 1, got {value!r}")
    return value == "1"


def _int(value: str, name: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise RemoteProtocolError(f"~HS/~HI: field {name} is not a number: {value!r}")
    return int(value)


@dataclass(frozen=True)
class HostStatus:
    """The ``~HS`` answer, field by field. Booleans are the printer's flags."""

    paper_out: bool = False
    paused: bool = False
    head_open: bool = False
    ribbon_out: bool = False
    labels_remaining: int = 0
    formats_in_buffer: int = 0
    buffer_full: bool = False
    partial_format: bool = False
    label_length_dots: int = 0
    interface_settings: int = 0
    comm_diagnostics: bool = False
    corrupt_ram: bool = False
    under_temperature: bool = False
    over_temperature: bool = False
    function_settings: int = 0
    thermal_transfer: bool = False
    print_mode: str = "2"
    print_width_mode: int = 0
    label_waiting: bool = False
    format_while_printing: bool = True
    graphics_stored: int = 0
    password: str = "0000"
    static_ram: bool = False

    def __post_init__(self) -> None:
        for name in (
            "labels_remaining",
            "formats_in_buffer",
            "label_length_dots",
            "interface_settings",
            "function_settings",
            "print_width_mode",
            "graphics_stored",
        ):
            if getattr(self, name) < 0:
                raise LocalProtocolError(f"HostStatus.{name} must be >= 0")
        if len(self.print_mode) != 1:
            raise LocalProtocolError("HostStatus.print_mode is one character")

    @property
    def faults(self) -> tuple[str, ...]:
        """Conditions that stop printing, most actionable first."""
        out = []
        if self.head_open:
            out.append("head_open")
        if self.paper_out:
            out.append("paper_out")
        if self.ribbon_out:
            out.append("ribbon_out")
        if self.over_temperature:
            out.append("over_temperature")
        if self.paused:
            out.append("paused")
        return tuple(out)

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing printing: a new job can be confirmed on its own."""
        return self.labels_remaining == 0 and self.formats_in_buffer == 0 and not self.partial_format

    def encode(self) -> bytes:
        """The three framed lines a printer sends."""

        def b(v: bool) -> str:
            return "1" if v else "0"

        line1 = (
            f"{self.interface_settings:03d},{b(self.paper_out)},{b(self.paused)},"
            f"{self.label_length_dots:04d},{self.formats_in_buffer:03d},{b(self.buffer_full)},"
            f"{b(self.comm_diagnostics)},{b(self.partial_format)},000,{b(self.corrupt_ram)},"
            f"{b(self.under_temperature)},{b(self.over_temperature)}"
        )
        line2 = (
            f"{self.function_settings:03d},0,{b(self.head_open)},{b(self.ribbon_out)},"
            f"{b(self.thermal_transfer)},{self.print_mode},{self.print_width_mode},"
            f"{b(self.label_waiting)},{self.labels_remaining:08d},{b(self.format_while_printing)},"
            f"{self.graphics_stored:03d}"
        )
        line3 = f"{self.password},{b(self.static_ram)}"
        return b"".join(_frame(line) for line in (line1, line2, line3))


_DPMM_TO_DPI: Final = {6: 152, 8: 203, 12: 300, 24: 600}


@dataclass(frozen=True)
class HostIdentification:
    """The ``~HI`` answer: model, firmware version, resolution (dots per mm), memory."""

    model: str
    firmware: str
    dots_per_mm: int
    memory: str
    options: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in ("model", "firmware", "memory", *[f"option{i}" for i in range(len(self.options))]):
            value = getattr(self, name) if not name.startswith("option") else self.options[int(name[6:])]
            if "," in value or any(ord(c) < 0x20 for c in value):
                raise LocalProtocolError(f"HostIdentification.{name}: no commas or control characters")
        if self.dots_per_mm <= 0:
            raise LocalProtocolError("HostIdentification.dots_per_mm must be > 0")

    @property
    def dpi(self) -> int:
        """Nominal dots per inch (8 dpmm is sold as 203 dpi, 12 as 300)."""
        return _DPMM_TO_DPI.get(self.dots_per_mm, round(self.dots_per_mm * 25.4))

    @property
    def memory_kb(self) -> int | None:
        digits = self.memory.upper().removesuffix("KB")
        return int(digits) if digits.isdigit() else None

    def encode(self) -> bytes:
        return _frame(
            ",".join((self.model, self.firmware, str(self.dots_per_mm), self.memory, *self.options))
        )


def _frame(text: str) -> bytes:
    return bytes([STX]) + text.encode("ascii") + bytes([ETX]) + b"\r\n"


def parse_host_status(lines: tuple[bytes, bytes, bytes] | list[bytes]) -> HostStatus:
    """Build a ``HostStatus`` from the three frame texts (without STX/ETX)."""
    if len(lines) != 3:
        raise RemoteProtocolError(f"~HS: expected 3 lines, got {len(lines)}")
    try:
        f1, f2, f3 = (line.decode("ascii").strip().split(",") for line in lines)
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError("~HS: non-ASCII bytes in the answer", b"".join(lines)) from exc
    if len(f1) != 12 or len(f2) != 11 or len(f3) != 2:
        raise RemoteProtocolError(
            f"~HS: lines have {len(f1)}/{len(f2)}/{len(f3)} fields, expected 12/11/2", b"".join(lines)
        )
    if len(f2[5]) != 1:
        raise RemoteProtocolError(f"~HS: print mode must be one character, got {f2[5]!r}")
    return HostStatus(
        interface_settings=_int(f1[0], "interface"),
        paper_out=_flag(f1[1], "paper_out"),
        paused=_flag(f1[2], "pause"),
        label_length_dots=_int(f1[3], "label_length"),
        formats_in_buffer=_int(f1[4], "formats_in_buffer"),
        buffer_full=_flag(f1[5], "buffer_full"),
        comm_diagnostics=_flag(f1[6], "comm_diag"),
        partial_format=_flag(f1[7], "partial_format"),
        corrupt_ram=_flag(f1[9], "corrupt_ram"),
        under_temperature=_flag(f1[10], "under_temp"),
        over_temperature=_flag(f1[11], "over_temp"),
        function_settings=_int(f2[0], "function_settings"),
        head_open=_flag(f2[2], "head_up"),
        ribbon_out=_flag(f2[3], "ribbon_out"),
        thermal_transfer=_flag(f2[4], "thermal_transfer"),
        print_mode=f2[5],
        print_width_mode=_int(f2[6], "print_width_mode"),
        label_waiting=_flag(f2[7], "label_waiting"),
        labels_remaining=_int(f2[8], "labels_remaining"),
        format_while_printing=_flag(f2[9], "format_while_printing"),
        graphics_stored=_int(f2[10], "graphics_stored"),
        password=f3[0],
        static_ram=_flag(f3[1], "static_ram"),
    )


def parse_host_identification(text: bytes) -> HostIdentification:
    """Build a ``HostIdentification`` from one frame text (without STX/ETX)."""
    try:
        fields = text.decode("ascii").strip().split(",")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError("~HI: non-ASCII bytes in the answer", text) from exc
    if len(fields) < 4:
        raise RemoteProtocolError(f"~HI: expected at least 4 fields, got {len(fields)}", text)
    model, firmware, dpmm, memory, *options = (f.strip() for f in fields)
    dots = _int(dpmm, "dpmm")
    if dots == 0:
        raise RemoteProtocolError("~HI: dots per mm is 0", text)
    try:
        return HostIdentification(model, firmware, dots, memory, tuple(options))
    except LocalProtocolError as exc:
        raise RemoteProtocolError(f"~HI: {exc}", text) from exc


class FrameReader:
    """Splits a byte stream into ``STX … ETX`` frame texts, bounded and resynchronising."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame
        self.discarded = 0

    def receive_data(self, data: bytes) -> None:
        self._buf += data

    def next_frame(self) -> bytes | _Need:
        """The next frame text, or ``NEED_DATA``; raises ``RemoteProtocolError`` on overflow."""
        start = self._buf.find(STX)
        if start < 0:
            self.discarded += len(self._buf)
            self._buf.clear()
            return NEED_DATA
        if start:
            self.discarded += start
            del self._buf[:start]
        # A new STX before ETX means the previous frame was cut: restart at the later STX.
        while True:
            end = self._buf.find(ETX, 1)
            restart = self._buf.find(STX, 1, end if end >= 0 else len(self._buf))
            if restart < 0:
                break
            self.discarded += restart
            del self._buf[:restart]
        if end < 0:
            if len(self._buf) > self._max:
                dropped = bytes(self._buf)
                self._buf.clear()
                raise RemoteProtocolError(f"ZPL answer frame longer than {self._max} bytes", dropped)
            return NEED_DATA
        text = bytes(self._buf[1:end])
        del self._buf[: end + 1]
        if len(text) > self._max:
            raise RemoteProtocolError(f"ZPL answer frame longer than {self._max} bytes", text)
        return text


class AnswerParser:
    """Host side: turns the printer's bytes into ``HostStatus`` / ``HostIdentification``.

    ``expect`` is what the host asked for (``~HS`` or ``~HI``): the two answers cannot be
    told apart by shape alone when a ~HI model name has few fields, so the caller says.
    ~HS lines are recognised by field count (12, 11, 2) and a line out of order restarts the
    collection, so a stale half answer never glues onto a fresh one.
    """

    def __init__(self, expect: bytes = HOST_STATUS) -> None:
        if expect not in (HOST_STATUS, HOST_IDENTIFICATION):
            raise LocalProtocolError(f"AnswerParser expects ~HS or ~HI, not {expect!r}")
        self.expect = expect
        self._frames = FrameReader()
        self._lines: list[bytes] = []

    @property
    def discarded(self) -> int:
        return self._frames.discarded

    def receive_data(self, data: bytes) -> None:
        self._frames.receive_data(data)

    def next_event(self) -> HostStatus | HostIdentification | _Need:
        while True:
            text = self._frames.next_frame()
            if isinstance(text, _Need):
                return NEED_DATA
            if self.expect == HOST_IDENTIFICATION:
                return parse_host_identification(text)
            count = text.count(b",") + 1
            position = {12: 0, 11: 1, 2: 2}.get(count)
            if position is None:
                self._lines.clear()
                raise RemoteProtocolError(f"~HS: a line with {count} fields", text)
            if position != len(self._lines):
                self._lines.clear()
                if position != 0:
                    raise RemoteProtocolError(f"~HS: line {position + 1} without the lines before it", text)
            self._lines.append(text)
            if len(self._lines) == 3:
                lines, self._lines = self._lines, []
                return parse_host_status(lines)
