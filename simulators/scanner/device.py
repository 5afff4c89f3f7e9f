"""A serial / USB-CDC barcode scanner: the device side of ``protocols.scanner`` framing,
served over a pty or TCP by ``simulators.link``.

A scanner only talks: every ``scan`` is framed as the configured scanner would send it
(prefix, AIM identifier, GS or its substitute, suffix) and injected to the host. Bytes the
host writes (a trigger or beep command) are recorded in ``received`` and not answered.

Faults: ``inject_garbage`` (line noise), ``scan_split`` (one scan in two writes with a delay
between them, as a Bluetooth or USB-CDC scanner does under load), ``unplug``/``plug``
(the link goes away; the pty path comes back after ``plug``). Never imports a driver.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from protocols.barcodes import classify
from protocols.scanner import GS, LineFraming, Symbology, aim_for, encode_scan, infer_symbology
from simulators.link import PtyEndpoint, TcpEndpoint
from simulators.scanner.script import GarbageStep, PlugStep, ScanStep, Step, UnplugStep, WaitStep

DEFAULT_GARBAGE = b"\x00\xff\x13#noise\x07"
_GS1_FIRST = {Symbology.GS1_128, Symbology.GS1_DATAMATRIX, Symbology.GS1_QR, Symbology.GS1_DATABAR}
_RECEIVED_MAX = 4096


@dataclass(frozen=True, slots=True)
class ScannerConfig:
    """How the simulated scanner is programmed and how its faults behave."""

    framing: LineFraming = field(default_factory=LineFraming)
    split_delay: float = 0.05
    """Seconds between the two halves of ``scan_split``."""
    baudrate: int | None = None
    """Pace writes like an RS-232 line at this speed (``None``: as fast as the pty takes them)."""

    def __post_init__(self) -> None:
        if self.split_delay < 0:
            raise ValueError("split_delay must be >= 0")


def symbology_of(code: str) -> Symbology:
    """The symbology a code like this is printed in (Code 128 when nothing more specific)."""
    found = infer_symbology(classify(code))
    return Symbology.CODE128 if found is Symbology.UNKNOWN else found


class ScannerSimulator:
    """A ``ByteDevice`` that scans codes on request; see the module docstring."""

    def __init__(self, config: ScannerConfig | None = None) -> None:
        self.config = config or ScannerConfig()
        self._lock = threading.Lock()
        self._endpoint: PtyEndpoint | TcpEndpoint | None = None
        self.received = bytearray()
        """What the host wrote (the last ``4096`` bytes)."""
        self.sent: list[bytes] = []
        """Every chunk injected to the host, in order."""

    # --- ByteDevice ------------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> bytes:
        with self._lock:
            self.received += data
            del self.received[:-_RECEIVED_MAX]
        return b""

    # --- scanning --------------------------------------------------------------------------

    def frame(self, code: str | bytes, symbology: Symbology | None = None) -> bytes:
        """The bytes this scanner sends for ``code`` (GS as ``\\x1d`` in ``code``)."""
        data = code.encode("utf-8") if isinstance(code, str) else code
        if symbology is None:
            symbology = symbology_of(data.decode("utf-8", errors="replace"))
        if self.config.framing.aim and symbology in _GS1_FIRST:
            data = data.lstrip(GS)  # FNC1 in first position is implied by the identifier
        return encode_scan(data, self.config.framing, aim_for(symbology))

    def scan(self, code: str | bytes, symbology: Symbology | None = None) -> bool:
        """Scan ``code`` now; ``False`` if no host could receive it (unplugged, not served)."""
        return self._inject(self.frame(code, symbology))

    def scan_split(
        self,
        code: str | bytes,
        symbology: Symbology | None = None,
        *,
        at: int | None = None,
        delay: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> bool:
        """Scan ``code`` in two writes cut at byte ``at`` (the middle) with ``delay`` between."""
        frame = self.frame(code, symbology)
        cut = len(frame) // 2 if at is None else at
        if not 0 < cut < len(frame):
            raise ValueError(f"split point {cut} outside 1..{len(frame) - 1}")
        if not self._inject(frame[:cut]):
            return False
        sleep(self.config.split_delay if delay is None else delay)
        return self._inject(frame[cut:])

    def inject_garbage(self, data: bytes = DEFAULT_GARBAGE) -> bool:
        """Send bytes that are no scan (line noise, a wrong baud rate)."""
        return self._inject(data)

    def play(self, steps: Iterable[Step], sleep: Callable[[float], None] = time.sleep) -> list[bool]:
        """Run script steps in order; returns, per scan or garbage step, whether it was sent."""
        results: list[bool] = []
        for step in steps:
            if isinstance(step, ScanStep):
                if step.split:
                    results.append(self.scan_split(step.code, step.symbology, sleep=sleep))
                else:
                    results.append(self.scan(step.code, step.symbology))
            elif isinstance(step, WaitStep):
                sleep(step.seconds)
            elif isinstance(step, GarbageStep):
                results.append(self.inject_garbage(step.data or DEFAULT_GARBAGE))
            elif isinstance(step, UnplugStep):
                self.unplug()
            elif isinstance(step, PlugStep):
                self.plug()
        return results

    def _inject(self, data: bytes) -> bool:
        endpoint = self._endpoint
        if endpoint is None or not endpoint.inject(data):
            return False
        self.sent.append(data)
        return True

    # --- link ------------------------------------------------------------------------------

    @property
    def plugged(self) -> bool:
        return self._endpoint is not None and self._endpoint.plugged

    def serve_pty(self) -> str:
        """Serve on a pty; returns the stable path a driver opens (see ``simulators.link``)."""
        endpoint = PtyEndpoint(self, baudrate=self.config.baudrate)
        self._endpoint = endpoint
        return endpoint.start()

    def serve_tcp(self, port: int = 0, host: str = "127.0.0.1") -> tuple[str, int]:
        """Serve on a TCP port (a serial-to-Ethernet converter); returns ``(host, port)``."""
        endpoint = TcpEndpoint(self, host, port, baudrate=self.config.baudrate)
        self._endpoint = endpoint
        return endpoint.start()

    def wait_connected(self, timeout: float) -> bool:
        """TCP only: wait until a host connected (a pty is always "connected")."""
        endpoint = self._endpoint
        if isinstance(endpoint, TcpEndpoint):
            return endpoint.wait_connected(timeout)
        return endpoint is not None

    def unplug(self) -> None:
        if self._endpoint is not None:
            self._endpoint.unplug()

    def plug(self) -> None:
        if self._endpoint is not None:
            self._endpoint.plug()

    def stop(self) -> None:
        if self._endpoint is not None:
            self._endpoint.stop()
            self._endpoint = None
