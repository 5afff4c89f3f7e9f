"""Serial and USB-CDC ("virtual COM port") scanners: a ``Transport`` + ``protocols.scanner.LineDecoder``.

The scanner talks on its own: ``read_scan`` waits for bytes, feeds the decoder with the time
they arrived and returns the first complete scan as a ``Scan`` (with its parsed meaning).
Without a suffix a scan ends after ``intercharacter_timeout`` of silence, so the read wakes up
at the decoder's ``deadline``. Garbage is never an error: it is logged and passed to
``options.on_discard``, and reading goes on.

Reconnecting: a lost link (unplugged USB-CDC scanner, dropped TCP converter) closes the port
and raises ``DeviceUnavailable``; ``open()`` again (same URL: ``/dev/serial/by-id/...`` comes
back after a replug) starts with a fresh decoder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from drivers.errors import DeviceUnavailable, DriverConfigError
from drivers.scanner.base import ScannerOptions
from drivers.transport import SerialTransport, Transport
from protocols.scanner import NEED_DATA, BytesDiscarded, CodeScanned, LineDecoder, Scan, make_scan

log = logging.getLogger(__name__)

_READ_CHUNK = 4096
_ITER_TIMEOUT = 1.0


class SerialScanner:
    """A line-based scanner on a pyserial URL (``/dev/ttyACM0``, a pty, ``tcp://host:port``)."""

    def __init__(
        self,
        transport_or_url: Transport | str,
        options: ScannerOptions | None = None,
        *,
        baudrate: int = 9600,
    ) -> None:
        if isinstance(transport_or_url, str):
            if isinstance(baudrate, bool) or not isinstance(baudrate, int) or baudrate <= 0:
                raise DriverConfigError(f"Недопустимая скорость порта сканера {baudrate!r}")
            self._transport: Transport = SerialTransport(transport_or_url, baudrate=baudrate)
        else:
            self._transport = transport_or_url
        self.options = options or ScannerOptions()
        self._decoder = LineDecoder(self.options.framing)
        self.discarded = 0
        """Chunks of bytes discarded since ``open`` (diagnostics)."""

    def __repr__(self) -> str:
        return f"SerialScanner({self._transport!r})"

    @property
    def is_open(self) -> bool:
        return self._transport.is_open

    def open(self) -> None:
        self._decoder = LineDecoder(self.options.framing)
        self.discarded = 0
        self._transport.open()

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> SerialScanner:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_scan(self, timeout: float = 1.0) -> Scan | None:
        """The next scan within ``timeout`` seconds, else ``None``.

        Raises ``DeviceUnavailable`` if the port is closed or the link is lost (the port is
        then closed; call ``open`` to reconnect).
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            now = time.monotonic()
            scan = self._next_scan(now)
            if scan is not None:
                return scan
            left = deadline - now
            if left <= 0:
                return None
            wake = self._decoder.deadline()
            wait = left if wake is None else min(left, max(wake - now, 0.0) + 0.001)
            try:
                data = self._transport.read(_READ_CHUNK, wait)
            except DeviceUnavailable:
                self._transport.close()
                raise
            if data:
                self._decoder.receive_data(data, time.monotonic())

    def __iter__(self) -> Iterator[Scan]:
        """Scans as they come, until the scanner is closed; ``DeviceUnavailable`` on a lost link."""
        while self.is_open:
            scan = self.read_scan(_ITER_TIMEOUT)
            if scan is not None:
                yield scan

    def _next_scan(self, now: float) -> Scan | None:
        while True:
            event = self._decoder.next_event(now)
            if event == NEED_DATA:
                return None
            if isinstance(event, CodeScanned):
                return make_scan(
                    event, self.options.weight_formats, fallback_encoding=self.options.fallback_encoding
                )
            if isinstance(event, BytesDiscarded):
                self._discarded(event)

    def _discarded(self, event: BytesDiscarded) -> None:
        self.discarded += 1
        log.warning(
            "Сканер %s: отброшено %d байт (%s): %r", self._transport, event.size, event.reason, event.head
        )
        if self.options.on_discard is not None:
            self.options.on_discard(event)
