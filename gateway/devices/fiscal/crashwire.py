"""Diagnostics: a crash point *inside* a receipt, between the items and the close.

The driver sends a whole receipt in one ``sell()`` call, so the binding cannot stop between
the last item and the close by itself. When ``fiscal.after_items`` is armed (tests only: see
``gateway.crashpoints``) the Shtrih driver gets this transport wrapper, which ends the process
as the close frame (``STX LEN FF 45 …``, FF45h "close receipt, variant 2") is about to be
written: the register holds an open receipt with every item, and nothing closed it.
"""

from __future__ import annotations

from typing import Any

from drivers.transport import SerialTransport, Transport
from gateway.crashpoints import armed, crashpoint
from gateway.devices.fiscal.const import CRASH_AFTER_ITEMS

_STX = 0x02
_CLOSE_RECEIPT_V2 = b"\xff\x45"


class CrashBeforeClose:
    """A ``Transport`` that delegates everything and crashes before writing the close frame."""

    def __init__(self, inner: Transport) -> None:
        self._inner = inner

    @property
    def is_open(self) -> bool:
        return self._inner.is_open

    def open(self) -> None:
        self._inner.open()

    def close(self) -> None:
        self._inner.close()

    def write(self, data: bytes) -> None:
        if len(data) >= 4 and data[0] == _STX and data[2:4] == _CLOSE_RECEIPT_V2:
            crashpoint(CRASH_AFTER_ITEMS)
        self._inner.write(data)

    def read(self, max_bytes: int, timeout: float) -> bytes:
        return self._inner.read(max_bytes, timeout)

    def read_until(self, terminator: bytes, timeout: float, max_bytes: int = 4096) -> bytes:
        return self._inner.read_until(terminator, timeout, max_bytes)

    def reset_input(self) -> None:
        self._inner.reset_input()


def instrument(driver: str, url: str, options: dict[str, Any]) -> dict[str, Any]:
    """Driver options with the crash transport when ``fiscal.after_items`` is armed, else as given."""
    if CRASH_AFTER_ITEMS not in armed() or driver != "shtrih" or "transport" in options:
        return options
    baudrate = int(options.get("baudrate", 115200))
    return {**options, "transport": CrashBeforeClose(SerialTransport(url, baudrate=baudrate))}
