"""An ESC/POS receipt printer: the device side of ``protocols.escpos`` over TCP 9100 or a pty.

Model (``feed(data, now)`` is the whole I/O surface):

- Host bytes are tokenized at once; ``DLE EOT n`` is answered at once from the paper,
  cover and error state (real-time commands work even offline, as on real printers).
- Everything else queues and prints while the printer is online. Text is decoded with the
  code page selected by ``ESC t n`` (``EPSON_PAGES``: 17 = CP866); ``LF``/``ESC d n`` end
  lines; ``ESC a``/``ESC E``/``ESC !``/``GS !`` set alignment, bold and size; ``GS k`` and
  ``GS ( k`` (QR store + print) print as ``[EAN13 …]`` / ``[QR …]`` lines; ``GS V`` cuts:
  the document is finished and written as UTF-8 text to ``out_dir/doc-NNNN.txt``.
- Each printed line uses one line of paper (``paper_lines``; ``None`` = endless). When it
  runs out the printer stops **and keeps the rest in its buffer**; loading paper (and
  closing the cover) resumes printing where it stopped, like an Epson-compatible printer.
  Near end is reported ``near_end_lines`` before the end.

Faults a test sets: ``set_paper``, ``set_cover_open``, ``set_cutter_error``,
``set_unrecoverable``, plus ``inject`` and ``unplug`` on the endpoint. Unknown commands are
recorded in ``unknown_commands``. Never imports a driver.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from protocols.escpos.codepages import EPSON_PAGES
from protocols.escpos.commands import Control, EscPosParser, RealTimeRequest, Text
from protocols.escpos.errors import RemoteProtocolError
from protocols.escpos.status import (
    NEED_DATA,
    ErrorCause,
    OfflineCause,
    PaperSensors,
    PrinterStatus,
    RealTimeStatus,
)
from simulators.link import PtyEndpoint, TcpEndpoint

MAX_PENDING = 200_000


@dataclass(frozen=True)
class ReceiptPrinterConfig:
    width: int = 48
    paper_lines: int | None = None
    near_end_lines: int = 20
    out_dir: Path | None = None
    codepages: dict[int, str] = field(default_factory=lambda: dict(EPSON_PAGES))

    def __post_init__(self) -> None:
        if self.width not in (32, 42, 48):
            raise ValueError("width must be 32, 42 or 48")
        if self.paper_lines is not None and self.paper_lines < 0:
            raise ValueError("paper_lines >= 0 or None")


@dataclass
class PrintedDocument:
    number: int
    lines: list[str] = field(default_factory=list)
    barcodes: list[tuple[str, str]] = field(default_factory=list)
    cut: bool = False
    path: Path | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


_BARCODE_A = {0: "UPC-A", 1: "UPC-E", 2: "EAN13", 3: "EAN8", 4: "CODE39", 5: "ITF", 6: "CODABAR"}
_BARCODE_B = {
    65: "UPC-A",
    66: "UPC-E",
    67: "EAN13",
    68: "EAN8",
    69: "CODE39",
    70: "ITF",
    71: "CODABAR",
    72: "CODE93",
    73: "CODE128",
}


class ReceiptPrinterSimulator:
    def __init__(self, config: ReceiptPrinterConfig | None = None) -> None:
        self.config = config or ReceiptPrinterConfig()
        self._parser = EscPosParser()
        self._lock = threading.RLock()
        self.paper_left = self.config.paper_lines
        self.cover_open = False
        self.cutter_error = False
        self.unrecoverable = False
        self.pending: deque[Text | Control] = deque()
        self.documents: list[PrintedDocument] = []
        self.unknown_commands: list[str] = []
        self.protocol_errors: list[str] = []
        self.overflowed = 0
        self._doc: PrintedDocument | None = None
        self._line = ""
        self._reset_style()
        self._qr = ""
        self._endpoints: list[PtyEndpoint | TcpEndpoint] = []

    def _reset_style(self) -> None:
        self.codepage = "cp437"
        self.align = 0
        self.bold = False
        self.size = 0

    # --- state ---------------------------------------------------------------------------

    @property
    def paper_out(self) -> bool:
        return self.paper_left == 0

    @property
    def online(self) -> bool:
        return not (self.paper_out or self.cover_open or self.cutter_error or self.unrecoverable)

    def status(self) -> RealTimeStatus:
        with self._lock:
            near = self.paper_left is not None and self.paper_left <= self.config.near_end_lines
            error = self.cutter_error or self.unrecoverable
            return RealTimeStatus(
                PrinterStatus(offline=not self.online, waiting_recovery=self.cutter_error),
                OfflineCause(cover_open=self.cover_open, paper_end_stop=self.paper_out, error=error),
                ErrorCause(autocutter=self.cutter_error, unrecoverable=self.unrecoverable),
                PaperSensors(near_end=near, paper_out=self.paper_out),
            )

    def set_paper(self, lines: int | None) -> None:
        with self._lock:
            self.paper_left = lines
            self._pump()

    def set_cover_open(self, value: bool) -> None:
        with self._lock:
            self.cover_open = value
            self._pump()

    def set_cutter_error(self, value: bool) -> None:
        with self._lock:
            self.cutter_error = value
            self._pump()

    def set_unrecoverable(self, value: bool) -> None:
        with self._lock:
            self.unrecoverable = value
            self._pump()

    # --- ByteDevice --------------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> bytes:
        with self._lock:
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
                if isinstance(event, RealTimeRequest):
                    if 1 <= event.n <= 4:
                        out.append(self.status().encode()[event.n - 1])
                    continue
                if len(self.pending) >= MAX_PENDING:
                    self.overflowed += 1
                    continue
                self.pending.append(event)
            self._pump()
            return bytes(out)

    # --- printing -------------------------------------------------------------------------------

    def _pump(self) -> None:
        while self.pending and self.online:
            event = self.pending[0]
            if self._needs_paper(event) and self.paper_left is not None:
                needed = self._paper_needed(event)
                if self.paper_left < needed:
                    self.paper_left = 0
                    return
                self.paper_left -= needed
            self.pending.popleft()
            self._apply(event)

    def _needs_paper(self, event: Text | Control) -> bool:
        if isinstance(event, Text):
            return False
        if event.name in ("LF", "ESC d", "GS k"):
            return True
        return event.name == "GS ( k" and event.payload[1:2] == b"Q"

    def _paper_needed(self, event: Text | Control) -> int:
        assert isinstance(event, Control)
        if event.name == "ESC d":
            return max(1, event.arg(0))
        if event.name == "GS k":
            return 3
        if event.name == "GS ( k":
            return 6
        return 1

    def _document(self) -> PrintedDocument:
        if self._doc is None:
            self._doc = PrintedDocument(len(self.documents) + 1)
        return self._doc

    def _emit_line(self) -> None:
        text = self._line
        width = self.config.width // (2 if self.size & 0xF0 or self.size & 0x20 else 1)
        if self.align == 1:
            text = text.center(width).rstrip()
        elif self.align == 2:
            text = text.rjust(width)
        self._document().lines.append(text)
        self._line = ""

    def _apply(self, event: Text | Control) -> None:
        if isinstance(event, Text):
            self._line += event.data.decode(self.codepage, errors="replace")
            return
        name, arg = event.name, event.arg(0)
        if name == "LF":
            self._emit_line()
        elif name in ("CR", "HT"):
            if name == "HT":
                self._line += " "
        elif name == "ESC @":
            self._reset_style()
        elif name == "ESC t":
            self.codepage = self.config.codepages.get(arg, "cp437")
        elif name == "ESC a":
            self.align = arg - 48 if arg >= 48 else arg
        elif name == "ESC E":
            self.bold = bool(arg & 1)
        elif name == "ESC !":
            self.bold = bool(arg & 0x08)
            self.size = (0x10 if arg & 0x20 else 0) | (0x01 if arg & 0x10 else 0)
        elif name == "GS !":
            self.size = arg
        elif name == "ESC d":
            if self._line:
                self._emit_line()
                arg -= 1
            for _ in range(max(0, arg)):
                self._document().lines.append("")
        elif name == "GS k":
            m = event.arg(0)
            kind = _BARCODE_A.get(m) or _BARCODE_B.get(m, f"barcode {m}")
            data = event.payload.decode("latin-1")
            if kind == "CODE128" and data[:1] == "{":
                data = data[2:].replace("{{", "{")
            self._document().barcodes.append((kind, data))
            self._document().lines.append(f"[{kind} {data}]".center(self.config.width).rstrip())
        elif name == "GS ( k":
            body = event.payload
            if body[:1] == b"1" and body[1:2] == b"P":
                self._qr = body[3:].decode("utf-8", errors="replace")
            elif body[:1] == b"1" and body[1:2] == b"Q":
                self._document().barcodes.append(("QR", self._qr))
                self._document().lines.append(f"[QR {self._qr}]".center(self.config.width).rstrip())
        elif name == "GS V":
            self._cut()
        elif not event.known or name not in _KNOWN:
            self.unknown_commands.append(name)

    def _cut(self) -> None:
        if self._line:
            self._emit_line()
        doc = self._document()
        while doc.lines and doc.lines[-1] == "":
            doc.lines.pop()
        doc.cut = True
        if self.config.out_dir is not None:
            self.config.out_dir.mkdir(parents=True, exist_ok=True)
            doc.path = self.config.out_dir / f"doc-{doc.number:04d}.txt"
            doc.path.write_text(doc.text, encoding="utf-8")
        self.documents.append(doc)
        self._doc = None

    # --- serving ---------------------------------------------------------------------------------

    def serve_tcp(self, port: int = 9100, host: str = "127.0.0.1") -> tuple[str, int]:
        endpoint = TcpEndpoint(self, host, port)
        self._endpoints.append(endpoint)
        return endpoint.start()

    def serve_pty(self) -> str:
        endpoint = PtyEndpoint(self)
        self._endpoints.append(endpoint)
        return endpoint.start()

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


_KNOWN = frozenset(
    {
        "ESC -",
        "ESC M",
        "ESC G",
        "ESC {",
        "ESC J",
        "ESC 2",
        "ESC 3",
        "ESC p",
        "ESC R",
        "ESC  ",
        "ESC $",
        "ESC V",
        "GS B",
        "GS b",
        "GS h",
        "GS w",
        "GS H",
        "GS f",
        "GS L",
        "GS W",
        "GS v",
        "FS .",
        "FS &",
        "DLE ENQ",
        "DLE 0x14",
    }
)
