"""Real-time status ``DLE EOT n`` (``10 04 n``): requests and the one-byte answers, typed.

Every answer byte has fixed bits: bit 0 = 0, bit 1 = 1, bit 4 = 1, bit 7 = 0, i.e.
``byte & 0x93 == 0x12`` (Epson ESC/POS reference, and the same tables in the Citizen
CT-S2000, CBM-1000, Bixolon SRP-350 manuals). The other bits::

    n=1 printer status   bit2 drawer kick-out connector pin 3 HIGH, bit3 offline,
                         bit5 waiting for online recovery, bit6 paper feed button pressed
    n=2 offline cause    bit2 cover open, bit3 paper being fed by the FEED button,
                         bit5 printing stopped by paper end, bit6 an error occurred
    n=3 error cause      bit2 mechanical / black-mark error (model-specific),
                         bit3 autocutter error, bit5 unrecoverable error,
                         bit6 auto-recoverable error (head overheat)
    n=4 paper sensors    bits2+3 near-end sensor: paper near its end,
                         bits5+6 paper-end sensor: no paper

So an idle printer answers ``12 12 12 12`` to n = 1..4; near end gives ``1E`` for n=4 and
paper out ``72``/``7E`` (python-escpos uses the same masks in ``paper_status``).
Some models set only one bit of each pair (Citizen: two near-end sensors): either bit counts.

``StatusParser`` is sans-I/O: the host says which ``n`` it asked, in order; a byte without the
fixed bits (an Automatic Status Back block, line noise) raises ``RemoteProtocolError`` after
being consumed, so the caller may go on reading.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Final

from protocols.escpos.errors import LocalProtocolError, RemoteProtocolError

DLE: Final = 0x10
EOT: Final = 0x04
FIXED_MASK: Final = 0x93
FIXED_VALUE: Final = 0x12


class StatusKind(IntEnum):
    PRINTER = 1
    OFFLINE = 2
    ERROR = 3
    PAPER = 4


def request(kind: StatusKind | int) -> bytes:
    """The ``DLE EOT n`` request bytes."""
    n = StatusKind(kind)
    return bytes([DLE, EOT, int(n)])


class _Need(Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _Need.NEED_DATA


def valid_status_byte(value: int) -> bool:
    return (value & FIXED_MASK) == FIXED_VALUE


@dataclass(frozen=True)
class PrinterStatus:
    drawer_pin3_high: bool = False
    offline: bool = False
    waiting_recovery: bool = False
    feed_button: bool = False

    def encode(self) -> int:
        return (
            FIXED_VALUE
            | self.drawer_pin3_high << 2
            | self.offline << 3
            | self.waiting_recovery << 5
            | (self.feed_button << 6)
        )


@dataclass(frozen=True)
class OfflineCause:
    cover_open: bool = False
    feeding_by_button: bool = False
    paper_end_stop: bool = False
    error: bool = False

    def encode(self) -> int:
        return (
            FIXED_VALUE
            | self.cover_open << 2
            | self.feeding_by_button << 3
            | self.paper_end_stop << 5
            | (self.error << 6)
        )


@dataclass(frozen=True)
class ErrorCause:
    mechanical: bool = False
    autocutter: bool = False
    unrecoverable: bool = False
    auto_recoverable: bool = False

    def encode(self) -> int:
        return (
            FIXED_VALUE
            | self.mechanical << 2
            | self.autocutter << 3
            | self.unrecoverable << 5
            | (self.auto_recoverable << 6)
        )


@dataclass(frozen=True)
class PaperSensors:
    near_end: bool = False
    paper_out: bool = False

    def encode(self) -> int:
        return FIXED_VALUE | (0x0C if self.near_end else 0) | (0x60 if self.paper_out else 0)


StatusByte = PrinterStatus | OfflineCause | ErrorCause | PaperSensors


def parse_status_byte(kind: StatusKind | int, value: int) -> StatusByte:
    """Decode one answer byte for request ``n``; ``RemoteProtocolError`` if the fixed bits are wrong."""
    if not 0 <= value <= 0xFF or not valid_status_byte(value):
        raise RemoteProtocolError(
            f"DLE EOT {int(kind)}: {value:#04x} is not a status byte", bytes([value & 0xFF])
        )

    def bit(n: int) -> bool:
        return bool(value >> n & 1)

    n = StatusKind(kind)
    if n is StatusKind.PRINTER:
        return PrinterStatus(bit(2), bit(3), bit(5), bit(6))
    if n is StatusKind.OFFLINE:
        return OfflineCause(bit(2), bit(3), bit(5), bit(6))
    if n is StatusKind.ERROR:
        return ErrorCause(bit(2), bit(3), bit(5), bit(6))
    return PaperSensors(bit(2) or bit(3), bit(5) or bit(6))


@dataclass(frozen=True)
class RealTimeStatus:
    """The four answers together, with what a driver acts on."""

    printer: PrinterStatus
    offline: OfflineCause
    error: ErrorCause
    paper: PaperSensors

    @property
    def online(self) -> bool:
        return not self.printer.offline

    @property
    def cover_open(self) -> bool:
        return self.offline.cover_open

    @property
    def paper_out(self) -> bool:
        return self.paper.paper_out or self.offline.paper_end_stop

    @property
    def paper_near_end(self) -> bool:
        return self.paper.near_end

    @property
    def faults(self) -> tuple[str, ...]:
        """Conditions that stop printing, most actionable first."""
        out = []
        if self.cover_open:
            out.append("cover_open")
        if self.paper_out:
            out.append("paper_out")
        if self.error.autocutter:
            out.append("cutter_error")
        if self.error.unrecoverable:
            out.append("unrecoverable_error")
        if self.error.auto_recoverable:
            out.append("overheat")
        if self.error.mechanical:
            out.append("mechanical_error")
        if not self.online and not out:
            out.append("offline")
        return tuple(out)

    def encode(self) -> bytes:
        """The four answer bytes for n = 1, 2, 3, 4."""
        return bytes([self.printer.encode(), self.offline.encode(), self.error.encode(), self.paper.encode()])


ALL_KINDS: Final = (StatusKind.PRINTER, StatusKind.OFFLINE, StatusKind.ERROR, StatusKind.PAPER)


class StatusParser:
    """Host side: matches answer bytes to the ``DLE EOT n`` requests sent, in order."""

    def __init__(self, max_pending: int = 64) -> None:
        self._expected: deque[StatusKind] = deque()
        self._buf = bytearray()
        self._max = max_pending

    def expect(self, kind: StatusKind | int) -> None:
        if len(self._expected) >= self._max:
            raise LocalProtocolError("too many status requests without answers")
        self._expected.append(StatusKind(kind))

    @property
    def pending(self) -> int:
        return len(self._expected)

    def receive_data(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) > self._max:  # more answers than questions: keep the newest
            del self._buf[: len(self._buf) - self._max]

    def next_event(self) -> tuple[StatusKind, StatusByte] | _Need:
        if not self._buf or not self._expected:
            return NEED_DATA
        value = self._buf.pop(0)
        if not valid_status_byte(value):
            raise RemoteProtocolError(f"{value:#04x} is not a DLE EOT status byte: skipped", bytes([value]))
        kind = self._expected.popleft()
        return kind, parse_status_byte(kind, value)


def combine(parts: dict[StatusKind, StatusByte]) -> RealTimeStatus:
    """Build a ``RealTimeStatus`` from the four answers (``LocalProtocolError`` if one lacks)."""
    try:
        printer, offline, error, paper = (parts[k] for k in ALL_KINDS)
    except KeyError as exc:
        raise LocalProtocolError(f"status answer for n={exc.args[0]} missing") from exc
    assert isinstance(printer, PrinterStatus) and isinstance(offline, OfflineCause)
    assert isinstance(error, ErrorCause) and isinstance(paper, PaperSensors)
    return RealTimeStatus(printer, offline, error, paper)
