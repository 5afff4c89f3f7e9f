"""A Zebra-like ZPL label printer: the device side of ``protocols.zpl`` over TCP 9100 or a pty.

Model (``feed(data, now)`` is the whole I/O surface, time passed in):

- Formats (``^XA…^XZ``) queue in the receive buffer; the head one prints as a batch of
  ``^PQ`` labels at ``labels_per_second`` (progress is computed lazily from ``now`` on
  every feed, so ``~HS`` shows "labels remaining" counting down as on a real printer).
- **While paused, out of paper, ribbon out or with the head open, formats are received
  and held** (``formats in buffer`` grows), as a real Zebra does; they print once the
  fault clears. A batch interrupted by paper out keeps its remaining count and resumes.
  Up to ``buffer_formats`` formats are held; beyond that the buffer-full flag is set and
  further formats are dropped (recorded in ``dropped_formats``).
- ``~HS`` and ``~HI`` are answered at once (even mid-format, even when faulted: ``~HS``
  is exactly how a host learns about faults). ``~JA`` cancels every queued format and the
  rest of the current batch. ``~PP`` pauses, ``~PS`` resumes (the PAUSE key).
- Each finished batch is rendered once to ``out_dir/label-NNNN.png`` (with the received
  format in ``label-NNNN.zpl``); ``printed`` lists them with the copies actually printed.
  Unknown commands are ignored and recorded in ``unknown_commands``.

Faults a test sets: ``set_paper(labels)`` (``0`` = paper out now, ``None`` = endless),
``set_head_open``, ``set_paused``, ``set_ribbon_out``, ``inject`` (garbage), ``unplug``.
Never imports a driver.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from protocols.zpl.commands import (
    NEED_DATA,
    Command,
    ControlCommand,
    LabelFormat,
    StrayCommand,
    ZplStreamParser,
)
from protocols.zpl.errors import RemoteProtocolError
from protocols.zpl.status import HostIdentification, HostStatus
from simulators.label.render import LabelRenderer
from simulators.link import PtyEndpoint, TcpEndpoint


@dataclass(frozen=True)
class LabelPrinterConfig:
    model: str = "ZD421-203dpi"
    firmware: str = "V93.21.26Z"
    dpi: int = 203
    memory: str = "8192KB"
    width_mm: int = 58
    height_mm: int = 40
    labels_per_second: float = 50.0  # 0 = instantly
    paper_labels: int | None = None  # None = endless roll
    buffer_formats: int = 16
    out_dir: Path | None = None
    render: bool = True

    def __post_init__(self) -> None:
        if self.dpi not in (203, 300):
            raise ValueError("dpi must be 203 or 300")
        if self.labels_per_second < 0 or self.buffer_formats < 1:
            raise ValueError("labels_per_second >= 0 and buffer_formats >= 1")
        if self.paper_labels is not None and self.paper_labels < 0:
            raise ValueError("paper_labels >= 0 or None")

    @property
    def dots_per_mm(self) -> int:
        return 8 if self.dpi == 203 else 12


@dataclass
class PrintedLabel:
    """One received format and how many of its copies came out."""

    number: int
    commands: tuple[Command, ...]
    copies_requested: int
    copies_printed: int = 0
    cancelled: bool = False
    texts: list[str] = field(default_factory=list)
    barcodes: list[tuple[str, str]] = field(default_factory=list)
    png: Path | None = None


class LabelPrinterSimulator:
    """The device model (a ``ByteDevice``) plus helpers to serve it."""

    def __init__(self, config: LabelPrinterConfig | None = None) -> None:
        self.config = config or LabelPrinterConfig()
        c = self.config
        self._parser = ZplStreamParser()
        self._lock = threading.RLock()
        self.renderer = LabelRenderer(c.width_mm * c.dots_per_mm, c.height_mm * c.dots_per_mm)
        self.paper_left = c.paper_labels
        self.head_open = False
        self.paused = False
        self.ribbon_out = False
        self.queue: deque[PrintedLabel] = deque()
        self.current: PrintedLabel | None = None
        self.printed: list[PrintedLabel] = []
        self.dropped_formats = 0
        self.unknown_commands: list[str] = []
        self.stray_commands: list[str] = []
        self.protocol_errors: list[str] = []
        self._count = 0
        self._clock: float | None = None
        self._progress = 0.0
        self._endpoints: list[PtyEndpoint | TcpEndpoint] = []
        self._halt = threading.Event()
        self._ticker: threading.Thread | None = None

    # --- state ---------------------------------------------------------------------------

    @property
    def paper_out(self) -> bool:
        return self.paper_left == 0

    @property
    def faulted(self) -> bool:
        return self.paper_out or self.head_open or self.paused or self.ribbon_out

    def status(self) -> HostStatus:
        with self._lock:
            remaining = 0
            if self.current is not None:
                remaining = self.current.copies_requested - self.current.copies_printed
            return HostStatus(
                paper_out=self.paper_out,
                paused=self.paused,
                head_open=self.head_open,
                ribbon_out=self.ribbon_out,
                labels_remaining=remaining,
                formats_in_buffer=len(self.queue),
                buffer_full=len(self.queue) >= self.config.buffer_formats,
                partial_format=self._parser.in_format,
                label_length_dots=self.config.height_mm * self.config.dots_per_mm,
                interface_settings=30,
                print_mode="2",
            )

    def identification(self) -> HostIdentification:
        return HostIdentification(
            self.config.model, self.config.firmware, self.config.dots_per_mm, self.config.memory
        )

    # --- faults ------------------------------------------------------------------------

    def set_paper(self, labels: int | None) -> None:
        with self._lock:
            self.paper_left = labels

    def set_head_open(self, value: bool) -> None:
        with self._lock:
            self.head_open = value

    def set_paused(self, value: bool) -> None:
        with self._lock:
            self.paused = value

    def set_ribbon_out(self, value: bool) -> None:
        with self._lock:
            self.ribbon_out = value

    # --- ByteDevice --------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> bytes:
        with self._lock:
            self.advance(now)
            self._parser.receive_data(data)
            out = bytearray()
            while True:
                try:
                    event = self._parser.next_event()
                except RemoteProtocolError as exc:
                    self.protocol_errors.append(str(exc))
                    continue
                if event is NEED_DATA:
                    break
                if isinstance(event, ControlCommand):
                    out += self._control(event.command, now)
                elif isinstance(event, LabelFormat):
                    self._receive_format(event)
                    self.advance(now)
                elif isinstance(event, StrayCommand):
                    self.stray_commands.append(event.command.code)
            return bytes(out)

    def _control(self, command: Command, now: float) -> bytes:
        name = command.name
        if name == "HS":
            self.advance(now)
            return self.status().encode()
        if name == "HI":
            return self.identification().encode()
        if name == "JA":
            if self.current is not None:
                self.current.cancelled = True
                self._finish(self.current)
                self.current = None
            for job in self.queue:
                job.cancelled = True
                self._finish(job)
            self.queue.clear()
        elif name == "PP":
            self.paused = True
        elif name == "PS":
            self.paused = False
            self._clock = now
        else:
            self.unknown_commands.append(command.code)
        return b""

    def _receive_format(self, fmt: LabelFormat) -> None:
        for c in fmt.commands:
            if c.name not in _HANDLED:
                self.unknown_commands.append(c.code)
        copies = 1
        for c in fmt.commands:
            if c.name == "PQ":
                copies = max(1, c.int_arg(0, 1))
        if len(self.queue) >= self.config.buffer_formats:
            self.dropped_formats += 1
            return
        self._count += 1
        self.queue.append(PrintedLabel(self._count, fmt.commands, copies))

    def advance(self, now: float) -> None:
        """Print what the time since the last call allows (labels_per_second)."""
        with self._lock:
            last, self._clock = self._clock, now
            if self.faulted:
                self._progress = 0.0
                return
            rate = self.config.labels_per_second
            if rate == 0:
                budget = float("inf")
            elif last is None:
                budget = self._progress
            else:
                budget = max(0.0, now - last) * rate + self._progress
            while True:
                if self.current is None:
                    if not self.queue:
                        self._progress = 0.0
                        return
                    self.current = self.queue.popleft()
                job = self.current
                while job.copies_printed < job.copies_requested:
                    if budget < 1:
                        self._progress = min(budget, 1.0)
                        return
                    if self.faulted:
                        self._progress = 0.0
                        return
                    if self.paper_left is not None:
                        self.paper_left -= 1
                    job.copies_printed += 1
                    budget -= 1
                self._finish(job)
                self.current = None

    def _finish(self, job: PrintedLabel) -> None:
        if job.copies_printed == 0 and job.cancelled:
            self.printed.append(job)
            return
        if self.config.render:
            rendered = self.renderer.render(job.commands)
            job.texts, job.barcodes = rendered.texts, rendered.barcodes
            if self.config.out_dir is not None:
                self.config.out_dir.mkdir(parents=True, exist_ok=True)
                job.png = self.config.out_dir / f"label-{job.number:04d}.png"
                rendered.image.save(job.png)
                zpl = b"^XA" + b"".join(c.encode() for c in job.commands) + b"^XZ"
                (self.config.out_dir / f"label-{job.number:04d}.zpl").write_bytes(zpl)
        self.printed.append(job)

    # --- serving -------------------------------------------------------------------------

    def serve_tcp(self, port: int = 9100, host: str = "127.0.0.1") -> tuple[str, int]:
        endpoint = TcpEndpoint(self, host, port)
        self._endpoints.append(endpoint)
        self._start_clock()
        return endpoint.start()

    def serve_pty(self) -> str:
        endpoint = PtyEndpoint(self)
        self._endpoints.append(endpoint)
        self._start_clock()
        return endpoint.start()

    def _start_clock(self) -> None:
        """Print queued labels as time passes even when the host sends nothing."""
        if self._ticker is not None:
            return
        self._halt.clear()

        def tick() -> None:
            while not self._halt.wait(0.02):
                self.advance(time.monotonic())

        self._ticker = threading.Thread(target=tick, name="label-printer-clock", daemon=True)
        self._ticker.start()

    def inject(self, data: bytes) -> None:
        for endpoint in self._endpoints:
            endpoint.inject(data)

    def unplug(self) -> None:
        for endpoint in self._endpoints:
            endpoint.unplug()

    def plug(self) -> None:
        for endpoint in self._endpoints:
            endpoint.plug()

    def stop(self) -> None:
        for endpoint in self._endpoints:
            endpoint.stop()
        self._endpoints.clear()
        self._halt.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None


_HANDLED = frozenset(
    {"FO", "LH", "A", "A@", "FH", "FD", "FS", "CI", "PW", "LL", "GB", "BY", "BE", "BC", "BX", "PQ", "FX"}
)
